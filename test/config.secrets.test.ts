// Pins the API key sources (env vs file, rotation) and that secrets never
// leave the Config through enumeration, and that the Config is frozen.
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, readApiKey } from '../src/config.js';
import { problemsOf } from './helpers/config.js';

const DOMAIN = 'acme-1234.tines.com';
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tines-config-test-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('TINES_API_KEY vs TINES_API_KEY_FILE', () => {
  it('uses TINES_API_KEY (trimmed) when only it is set', () => {
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: '  tk_env_key  ' });
    expect(readApiKey(c)).toBe('tk_env_key');
    expect(c.tines.apiKeyFile).toBeUndefined();
  });

  it('requires one of the two', () => {
    const problems = problemsOf({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: ' ', TINES_API_KEY_FILE: '' });
    expect(problems).toEqual([expect.stringMatching(/^TINES_API_KEY is required.*TINES_API_KEY_FILE/)]);
  });

  it('rejects both being set', () => {
    const file = join(dir, 'key');
    writeFileSync(file, 'tk_file_key');
    const problems = problemsOf({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: 'tk_env', TINES_API_KEY_FILE: file });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('TINES_API_KEY and TINES_API_KEY_FILE are both set');
  });

  it('reads the key file (trimmed) and re-reads it after rotation', () => {
    const file = join(dir, 'key');
    writeFileSync(file, 'tk_first\n');
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: file });
    expect(c.tines.apiKeyFile).toBe(file);
    expect(c.tines.apiKey).toBeUndefined();
    expect(readApiKey(c)).toBe('tk_first');
    writeFileSync(file, '  tk_rotated  \n');
    expect(readApiKey(c)).toBe('tk_rotated');
  });

  it('stores the key file path as an absolute path', () => {
    const file = join(dir, 'key');
    writeFileSync(file, 'tk');
    const rel = relative(process.cwd(), file);
    expect(rel.startsWith('/')).toBe(false);
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: rel });
    expect(c.tines.apiKeyFile).toBe(file);
  });

  it('reports a missing key file at load time by name and errno code', () => {
    const problems = problemsOf({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: join(dir, 'nope') });
    expect(problems).toEqual([expect.stringMatching(/^TINES_API_KEY_FILE .*ENOENT/)]);
  });

  it('reports an empty key file at load time', () => {
    const file = join(dir, 'key');
    writeFileSync(file, ' \n');
    const problems = problemsOf({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: file });
    expect(problems).toEqual([expect.stringMatching(/^TINES_API_KEY_FILE .*empty/)]);
  });

  it('readApiKey throws a clear error when the file disappears or empties later, without the old key', () => {
    const file = join(dir, 'key');
    writeFileSync(file, 'tk_gone_soon');
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: file });
    writeFileSync(file, '');
    expect(() => readApiKey(c)).toThrow(/TINES_API_KEY_FILE .*empty/);
    unlinkSync(file);
    let err: Error | undefined;
    try {
      readApiKey(c);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/TINES_API_KEY_FILE/);
    expect(err?.message).toContain('ENOENT');
    expect(err?.message).not.toContain('tk_gone_soon');
  });
});

describe('secrets are non-enumerable', () => {
  const KEY = 'tk_super_secret_value';
  const PASSWORD = 'pg-p4ssw0rd-xyz';
  const env = { TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: KEY, DATABASE_URL: `postgres://conn:${PASSWORD}@db.internal:5432/tines` };

  it('the key and the database URL are readable but not enumerable', () => {
    const c = loadConfig(env);
    expect(c.tines.apiKey).toBe(KEY);
    expect(c.database.url).toBe(env.DATABASE_URL);
    expect(Object.keys(c.tines)).not.toContain('apiKey');
    expect(Object.keys(c.database)).not.toContain('url');
    expect(Object.getOwnPropertyDescriptor(c.tines, 'apiKey')?.enumerable).toBe(false);
    expect(Object.getOwnPropertyDescriptor(c.database, 'url')?.enumerable).toBe(false);
  });

  it('JSON.stringify, spreads and util.inspect carry neither secret', () => {
    const c = loadConfig(env);
    for (const text of [
      JSON.stringify(c),
      JSON.stringify({ ...c.tines }),
      JSON.stringify({ ...c.database }),
      inspect(c, { depth: 10 }),
      JSON.stringify(structuredClone(c)),
    ]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(PASSWORD);
    }
    expect(JSON.stringify(c)).toContain(DOMAIN);
  });

  it('a key file config carries no key at all', () => {
    const file = join(dir, 'key');
    writeFileSync(file, KEY);
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY_FILE: file });
    expect(JSON.stringify(c)).not.toContain(KEY);
    expect(inspect(c, { depth: 10, showHidden: true })).not.toContain(KEY);
  });
});

describe('config is frozen', () => {
  it('every level is frozen and writes throw', () => {
    const c = loadConfig({ TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: 'k', ORG_EMAIL_DOMAINS: 'example.com' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.tines)).toBe(true);
    expect(Object.isFrozen(c.database)).toBe(true);
    expect(Object.isFrozen(c.sync)).toBe(true);
    expect(Object.isFrozen(c.orgEmailDomains)).toBe(true);
    const m = c as unknown as Record<string, Record<string, unknown>>;
    expect(() => {
      (c as unknown as Record<string, unknown>).connectorName = 'x';
    }).toThrow(TypeError);
    expect(() => {
      m.tines!.pageSize = 1;
    }).toThrow(TypeError);
    expect(() => {
      m.tines!.apiKey = 'other';
    }).toThrow(TypeError);
    expect(() => {
      m.database!.url = 'postgres://x';
    }).toThrow(TypeError);
    expect(() => {
      (c.orgEmailDomains as string[]).push('evil.example');
    }).toThrow(TypeError);
    expect(c.tines.apiKey).toBe('k');
  });
});
