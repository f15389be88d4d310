// Sealed keys of registered connectors: AES-256-GCM with the connector's id as
// associated data, a key id naming the master key, rotation; the master key
// variables; and what a sync does when a sealed key does not open.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { insertRegistered, registeredTarget, rekeyAll } from '../src/connectors/registry.js';
import { masterKey, masterKeyId, MasterKeyMissingError, parseMasterKey, seal, unseal, UnsealError } from '../src/connectors/sealing.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { runSync } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { problemsOf } from './helpers/config.js';
import { createHarness, type Harness } from './helpers/harness.js';

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const DOMAIN = 'acme-1234.tines.com';

describe('seal and unseal', () => {
  const mk = masterKey(K1);

  it('opens what it sealed, with a fresh nonce each time', () => {
    const a = seal('tk_secret_value', 7, mk);
    const b = seal('tk_secret_value', 7, mk);
    expect(a.sealed.equals(b.sealed)).toBe(false);
    expect(a.sealed.subarray(0, 12).equals(b.sealed.subarray(0, 12))).toBe(false);
    expect(a.keyId).toBe(mk.id);
    expect(unseal(a.sealed, a.keyId, 7, [mk])).toBe('tk_secret_value');
    expect(a.sealed.toString('latin1')).not.toContain('tk_secret_value');
  });

  it("a sealed key copied to another connector's row does not open", () => {
    const a = seal('tk_secret_value', 7, mk);
    expect(() => unseal(a.sealed, a.keyId, 8, [mk])).toThrow(UnsealError);
  });

  it('an altered byte does not open', () => {
    const a = seal('tk_secret_value', 7, mk);
    a.sealed[14] = a.sealed[14]! ^ 1;
    expect(() => unseal(a.sealed, a.keyId, 7, [mk])).toThrow(UnsealError);
  });

  it('another master key: a clear reason naming both key ids, never a key', () => {
    const a = seal('tk_secret_value', 7, mk);
    const other = masterKey(K2);
    let err: Error | undefined;
    try {
      unseal(a.sealed, a.keyId, 7, [other]);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(UnsealError);
    expect(err!.message).toContain(mk.id);
    expect(err!.message).toContain(other.id);
    expect(err!.message).not.toContain(K1.toString('base64'));
    expect(err!.message).not.toContain(K2.toString('hex'));
  });

  it('no master key at all: MasterKeyMissingError naming the variable', () => {
    const a = seal('x', 1, mk);
    expect(() => unseal(a.sealed, a.keyId, 1, [])).toThrow(MasterKeyMissingError);
    expect(new MasterKeyMissingError().message).toContain('CONNECTOR_SECRETS_KEY');
  });

  it('the previous master key opens keys sealed under it', () => {
    const a = seal('tk_old', 3, mk);
    expect(unseal(a.sealed, a.keyId, 3, [masterKey(K2), mk])).toBe('tk_old');
  });

  it('a master key is 32 bytes in hex or base64; its id is a hash, and the bytes never show', () => {
    expect(parseMasterKey(K1.toString('hex')).equals(K1)).toBe(true);
    expect(parseMasterKey(K1.toString('base64')).equals(K1)).toBe(true);
    expect(parseMasterKey(K1.toString('base64url')).equals(K1)).toBe(true);
    expect(() => parseMasterKey('too-short')).toThrow(/32 bytes/);
    expect(() => parseMasterKey(randomBytes(16).toString('hex'))).toThrow(/32 bytes/);
    expect(masterKeyId(K1)).toMatch(/^mk-[0-9a-f]{12}$/);
    expect(K1.toString('hex')).not.toContain(masterKeyId(K1).slice(3));
    const shown = `${JSON.stringify(mk)} ${inspect(mk)} ${inspect(mk, { showHidden: false })}`;
    expect(shown).not.toContain(K1.toString('hex').slice(0, 16));
  });
});

describe('master key and admin variables', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'tines-sealing-config-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = { TINES_TENANT_DOMAIN: DOMAIN, TINES_API_KEY: 'tk' };

  it('defaults: no master key, no admin token, 8081, 4 at once, 60 s spread, 90 days of runs', () => {
    const c = loadConfig(base);
    expect(c.registry.masterKeys).toEqual([]);
    expect(c.admin).toEqual({ port: 8081 });
    expect(c.admin.token).toBeUndefined();
    expect(c.registry).toMatchObject({ syncConcurrency: 4, spreadSeconds: 60, runsRetentionDays: 90 });
  });

  it('reads the keys from variables or files; none of them enumerable or printed', () => {
    const file = join(dir, 'mk');
    writeFileSync(file, `${K2.toString('hex')}\n`);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'admin-token-0123456789abcdef\n');
    const c = loadConfig({ ...base, CONNECTOR_SECRETS_KEY: K1.toString('base64'), CONNECTOR_SECRETS_KEY_PREVIOUS_FILE: file, ADMIN_TOKEN_FILE: tokenFile });
    expect(c.registry.masterKeys.map((k) => k.id)).toEqual([masterKeyId(K1), masterKeyId(K2)]);
    expect(c.admin.token).toBe('admin-token-0123456789abcdef');
    const shown = `${JSON.stringify(c)}\n${inspect(c, { depth: 10 })}`;
    for (const secret of [K1.toString('base64'), K1.toString('hex'), K2.toString('hex'), 'admin-token-0123456789abcdef']) expect(shown).not.toContain(secret);
  });

  it('every problem at once: a bad master key, a previous one without a current one, a short token, both forms of one secret', () => {
    const p1 = problemsOf({ ...base, CONNECTOR_SECRETS_KEY: 'not-a-key', ADMIN_TOKEN: 'short' });
    expect(p1).toEqual([expect.stringMatching(/^CONNECTOR_SECRETS_KEY must be 32 bytes/), expect.stringMatching(/^ADMIN_TOKEN must be at least 16/)]);
    expect(p1.join('\n')).not.toContain('not-a-key');
    const p2 = problemsOf({ ...base, CONNECTOR_SECRETS_KEY_PREVIOUS: K1.toString('hex') });
    expect(p2).toEqual([expect.stringMatching(/CONNECTOR_SECRETS_KEY_PREVIOUS is set without CONNECTOR_SECRETS_KEY/)]);
    const p3 = problemsOf({ ...base, ADMIN_TOKEN: 'x'.repeat(20), ADMIN_TOKEN_FILE: join(dir, 'nope'), SYNC_CONCURRENCY: '0' });
    expect(p3).toContain('ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set: set only one');
    expect(p3.some((p) => p.startsWith('SYNC_CONCURRENCY'))).toBe(true);
  });
});

describe.each(backends())('sealed keys in the database (%s)', (backend) => {
  let h: Harness;
  const KEY_A = 'tk_tenant_a_7d1e0c';
  const KEY_B = 'tk_tenant_b_93aa41';
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(5, { seed: 3 }));
    h.fake.addTenant(KEY_A, generateUsers(4, { seed: 4 }));
    h.fake.addTenant(KEY_B, generateUsers(6, { seed: 5 }));
  });
  afterAll(() => h?.close());

  const cfg = (keys: Buffer[]) => {
    const [cur, prev] = keys;
    return h.config({
      ...(cur ? { CONNECTOR_SECRETS_KEY: cur.toString('hex') } : {}),
      ...(prev ? { CONNECTOR_SECRETS_KEY_PREVIOUS: prev.toString('base64') } : {}),
    });
  };

  it('stores only the sealed key and its key id; the table holds no key in any form', async () => {
    const config = cfg([K1]);
    const a = await insertRegistered(h.db, config, { name: 'tenant-a', tenantDomain: new URL(h.fake.url).host, schedule: null, apiKey: KEY_A });
    await insertRegistered(h.db, config, { name: 'tenant-b', tenantDomain: new URL(h.fake.url).host, schedule: '*/5 * * * *', apiKey: KEY_B });
    expect(a.sealed_key_id).toBe(masterKeyId(K1));
    const dump = JSON.stringify(await h.rows(`SELECT *, encode(sealed_api_key, 'escape') AS esc, encode(sealed_api_key, 'base64') AS b64 FROM connectors`));
    expect(dump).not.toContain(KEY_A);
    expect(dump).not.toContain(KEY_B);
    const outcome = await runSync({ config, db: h.db, log: h.logs.logger, target: registeredTarget(h.db, config, a) }, { trigger: 'manual' });
    expect(outcome.result).toBe('succeeded');
    expect((await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM tines_users WHERE connector_id = $1`, [a.id])).n).toBe(4);
  });

  it("a sealed key copied to another connector's row does not open: that connector is failing, with why", async () => {
    const config = cfg([K1]);
    await h.db.query(`UPDATE connectors SET sealed_api_key = (SELECT sealed_api_key FROM connectors WHERE name = 'tenant-a') WHERE name = 'tenant-b'`);
    const b = (await h.one<{ id: number; name: string; tenant_domain: string }>(`SELECT id, name, tenant_domain FROM connectors WHERE name = 'tenant-b'`))!;
    await expect(runSync({ config, db: h.db, log: h.logs.logger, target: registeredTarget(h.db, config, b) }, { trigger: 'schedule' })).rejects.toThrow(
      UnsealError,
    );
    const row = await h.one<{ status: string; status_reason: string }>(`SELECT status, status_reason FROM connectors WHERE name = 'tenant-b'`);
    expect(row.status).toBe('failing');
    expect(row.status_reason).toMatch(/does not open/);
    expect((await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM tines_users WHERE connector_id = $1`, [b.id])).n).toBe(0);
  });

  it('a wrong master key: failing with a reason naming the key ids, no crash; the right one makes it active again', async () => {
    const wrong = cfg([K2]);
    const a = (await h.one<{ id: number; name: string; tenant_domain: string }>(`SELECT id, name, tenant_domain FROM connectors WHERE name = 'tenant-a'`))!;
    await expect(runSync({ config: wrong, db: h.db, log: h.logs.logger, target: registeredTarget(h.db, wrong, a) }, { trigger: 'schedule' })).rejects.toThrow(
      /not configured here/,
    );
    let row = await h.one<{ status: string; status_reason: string }>(`SELECT status, status_reason FROM connectors WHERE name = 'tenant-a'`);
    expect(row).toMatchObject({ status: 'failing' });
    expect(row.status_reason).toContain(masterKeyId(K1));
    expect(row.status_reason).toContain(masterKeyId(K2));
    // Without any master key: failing, naming the variable; the environment's connector is unaffected.
    const none = cfg([]);
    await expect(runSync({ config: none, db: h.db, log: h.logs.logger, target: registeredTarget(h.db, none, a) }, { trigger: 'schedule' })).rejects.toThrow(
      MasterKeyMissingError,
    );
    row = await h.one(`SELECT status, status_reason FROM connectors WHERE name = 'tenant-a'`);
    expect(row.status_reason).toContain('CONNECTOR_SECRETS_KEY');
    expect((await runSync({ config: none, db: h.db, log: h.logs.logger }, { trigger: 'manual' })).result).toBe('succeeded');
    const right = cfg([K1]);
    expect((await runSync({ config: right, db: h.db, log: h.logs.logger, target: registeredTarget(h.db, right, a) }, { trigger: 'manual' })).result).toBe(
      'succeeded',
    );
    row = await h.one(`SELECT status, status_reason FROM connectors WHERE name = 'tenant-a'`);
    expect(row).toEqual({ status: 'active', status_reason: null });
  });

  it('rotation: the previous master key opens, rekey reseals everything under the current one', async () => {
    const rotating = cfg([K2, K1]);
    const result = await rekeyAll(h.db, rotating);
    expect(result.resealed).toEqual(['tenant-a']);
    // tenant-b holds tenant-a's sealed value: it does not open under its own id, and is reported, not resealed.
    expect(result.failed.map((f) => f.name)).toEqual(['tenant-b']);
    const ids = await h.rows<{ name: string; sealed_key_id: string }>(`SELECT name, sealed_key_id FROM connectors WHERE source = 'registry' ORDER BY name`);
    expect(ids).toEqual([
      { name: 'tenant-a', sealed_key_id: masterKeyId(K2) },
      { name: 'tenant-b', sealed_key_id: masterKeyId(K1) },
    ]);
    const onlyNew = cfg([K2]);
    const a = (await h.one<{ id: number; name: string; tenant_domain: string }>(`SELECT id, name, tenant_domain FROM connectors WHERE name = 'tenant-a'`))!;
    expect(await registeredTarget(h.db, onlyNew, a).readKey()).toBe(KEY_A);
    expect(h.logs.text).not.toContain(KEY_A);
    expect(h.logs.text).not.toContain(KEY_B);
  });
});
