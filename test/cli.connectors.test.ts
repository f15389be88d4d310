// `tines-connector connectors …`, the real bin: Connect before Save (0 saved,
// 1 unreachable, 3 refused, 2 bad input or name taken; nothing saved unless
// Tines accepted), list/show/set-key/remove/rekey, and no key in any output or table.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, CLI, runCli, type CliResult } from './helpers/cli.js';
import { freePort } from './helpers/daemon.js';
import { createHarness, inDb, type Harness } from './helpers/harness.js';

const CHILD_CWD = childCwd();
const MK = randomBytes(32).toString('base64');
const MK2 = randomBytes(32).toString('hex');
const KEY_B = 'tk_tenant_b_55e1c0a7';
const KEY_C = 'tk_tenant_c_0be3d912';
const KEY_NEW = 'tk_tenant_b_rotated_77aa';
const WEAK = 'tk_weak_key_1d2c';
const SECRETS = [KEY_B, KEY_C, KEY_NEW, WEAK, MK, MK2];

describe.each(backends())('connectors commands (%s)', (backend) => {
  let h: Harness;
  let hang: http.Server;
  let hangUrl: string;
  const outputs: CliResult[] = [];
  const keyFile = (name: string, key: string) => {
    const f = join(CHILD_CWD, `${backend}-${name}`);
    writeFileSync(f, `${key}\n`);
    return f;
  };
  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await runCli(args, childEnv({ ...h.env, LOG_LEVEL: 'info', CONNECTOR_SECRETS_KEY: MK, ...extra }), { cwd: CHILD_CWD });
    outputs.push(r);
    return r;
  };
  const registered = () =>
    inDb(h, async (db) => (await db.query<{ name: string }>(`SELECT name FROM connectors WHERE source = 'registry' ORDER BY name`)).rows.map((r) => r.name));

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(5, { seed: 1 }));
    h.fake.addTenant(KEY_B, generateUsers(7, { seed: 2 }));
    h.fake.addTenant(KEY_C, generateUsers(3, { seed: 3 }));
    h.fake.forbiddenKeys.add(WEAK);
    if (backend === 'embedded') await h.db.close();
    hang = http.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    hang?.closeAllConnections();
    await new Promise((r) => hang?.close(r));
    await h?.close();
    // No key in any output of any command of this file.
    const all = outputs.map((o) => o.stdout + o.stderr).join('\n');
    for (const s of SECRETS) expect(all).not.toContain(s);
  });

  it('add: one call to Tines, then saved (exit 0); list and show tell about it without the key', async () => {
    const r = await cli(['connectors', 'add', '--name', 'tenant-b', '--domain', h.fake.url, '--key-file', keyFile('b', KEY_B), '--schedule', '*/5 * * * *']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Tines accepted the key .*\(7 users\); saved connector "tenant-b"/);
    expect(h.fake.requests.filter((q) => q.auth === `Bearer ${KEY_B}`)).toHaveLength(1);
    const list = await cli(['connectors', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const rows = (JSON.parse(list.stdout) as { connectors: Record<string, unknown>[] }).connectors;
    expect(rows).toEqual([
      expect.objectContaining({
        name: 'tenant-b',
        source: 'registry',
        schedule: '*/5 * * * *',
        status: 'active',
        api_key_fingerprint: expect.stringMatching(/^sha256:/),
      }),
    ]);
    expect(rows[0]).not.toHaveProperty('sealed_api_key');
    const show = await cli(['connectors', 'show', 'tenant-b']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/tenant-b \(127\.0\.0\.1:\d+\)[\s\S]*registered[\s\S]*\*\/5 \* \* \* \*[\s\S]*sealed under master key mk-/);
  });

  it('add from stdin (--key-stdin) works the same', async () => {
    const r = await new Promise<CliResult>((done) => {
      const child = spawn(process.execPath, [CLI, 'connectors', 'add', '--name', 'tenant-c', '--domain', h.fake.url, '--key-stdin'], {
        cwd: CHILD_CWD,
        env: childEnv({ ...h.env, LOG_LEVEL: 'warn', CONNECTOR_SECRETS_KEY: MK }),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
      child.stdin.end(`${KEY_C}\n`);
    });
    outputs.push(r);
    expect(r.code, r.stderr).toBe(0);
    expect(await registered()).toEqual(['tenant-b', 'tenant-c']);
  });

  it('bad input: exit 2 with the reason, Tines not called, nothing saved', async () => {
    const before = h.fake.requests.length;
    const cases: [string[], RegExp][] = [
      [['--name', 'tenant-b', '--domain', h.fake.url, '--key-file', keyFile('b2', KEY_B)], /"tenant-b" already exists/],
      [['--name', 'has space', '--domain', h.fake.url, '--key-file', keyFile('b2', KEY_B)], /name may contain only/],
      [['--name', 'x'.repeat(101), '--domain', h.fake.url, '--key-file', keyFile('b2', KEY_B)], /name must be at most 100/],
      [['--name', 'ok', '--domain', 'not a domain!', '--key-file', keyFile('b2', KEY_B)], /tenant_domain .*not a domain or URL/],
      [['--name', 'ok', '--domain', 'http://acme.tines.com', '--key-file', keyFile('b2', KEY_B)], /only accepted for loopback/],
      [['--name', 'ok', '--domain', h.fake.url, '--key-file', keyFile('b2', KEY_B), '--schedule', '99 * * * *'], /schedule is not a valid/],
      [['--name', 'ok', '--domain', h.fake.url], /--key-file F or --key-stdin/],
      [['--name', 'ok', '--domain', h.fake.url, '--key', KEY_B], /Unknown option '--key'/],
      [['--name', 'ok', '--domain', h.fake.url, '--key-file', join(CHILD_CWD, 'missing')], /cannot read --key-file/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['connectors', 'add', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(h.fake.requests.length).toBe(before);
    expect(await registered()).toEqual(['tenant-b', 'tenant-c']);
  });

  it('no master key: registering is refused (exit 2, naming the variable), Tines not called', async () => {
    const before = h.fake.requests.length;
    const r = await cli(['connectors', 'add', '--name', 'ok', '--domain', h.fake.url, '--key-file', keyFile('c', KEY_C)], { CONNECTOR_SECRETS_KEY: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONNECTOR_SECRETS_KEY/);
    expect(h.fake.requests.length).toBe(before);
  });

  it('a key Tines refuses (401, 403): exit 3, nothing saved', async () => {
    for (const key of ['tk_unknown_key_0000', WEAK]) {
      const r = await cli(['connectors', 'add', '--name', 'refused', '--domain', h.fake.url, '--key-file', keyFile('r', key)]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(key === WEAK ? /refused the key \(403\)/ : /refused the key \(401\)/);
    }
    expect(await registered()).toEqual(['tenant-b', 'tenant-c']);
  });

  it('Tines unreachable or hanging: exit 1 within TINES_TIMEOUT_MS, nothing saved', async () => {
    const port = await freePort();
    let r = await cli(['connectors', 'add', '--name', 'gone', '--domain', `http://127.0.0.1:${port}`, '--key-file', keyFile('c', KEY_C)]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/could not be reached; nothing saved/);
    const t0 = Date.now();
    r = await cli(['connectors', 'add', '--name', 'hung', '--domain', hangUrl, '--key-file', keyFile('c', KEY_C)], { TINES_TIMEOUT_MS: '1500' });
    expect(r.code, r.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await registered()).toEqual(['tenant-b', 'tenant-c']);
  });

  it('set-key: checked like add (3 refused, nothing changed), then the new key; the connector is active again', async () => {
    let r = await cli(['connectors', 'set-key', 'tenant-b', '--key-file', keyFile('w', WEAK)]);
    expect(r.code).toBe(3);
    await inDb(h, (db) => db.query(`UPDATE connectors SET status = 'reconnect_required', status_reason = 'test' WHERE name = 'tenant-b'`));
    h.fake.addTenant(KEY_NEW, generateUsers(7, { seed: 2 }));
    r = await cli(['connectors', 'set-key', 'tenant-b', '--key-file', keyFile('n', KEY_NEW)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/active again \(was reconnect_required\)/);
    r = await cli(['connectors', 'set-key', 'nobody', '--key-file', keyFile('n', KEY_NEW)]);
    expect(r.code).toBe(2);
  });

  it('sync, status and report take --connector NAME', async () => {
    let r = await cli(['sync', '--connector', 'tenant-b', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'succeeded', counts: { usersAdded: 7 } });
    r = await cli(['status', '--connector', 'tenant-b', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout) as { connectors: { name: string; users_present: number }[] };
    expect(st.connectors).toEqual([expect.objectContaining({ name: 'tenant-b', users_present: 7 })]);
    r = await cli(['report', '--connector', 'tenant-b', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { connectors: { name: string }[] }).connectors.map((c) => c.name)).toEqual(['tenant-b']);
    r = await cli(['sync', '--connector', 'nobody']);
    expect(r.code).toBe(2);
  });

  it('rotation: rekey under a new master key with the old one as previous; then the old one is not needed', async () => {
    let r = await cli(['connectors', 'rekey'], { CONNECTOR_SECRETS_KEY: MK2, CONNECTOR_SECRETS_KEY_PREVIOUS: MK });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resealed under master key mk-[0-9a-f]{12}: 2 \(tenant-b, tenant-c\)/);
    r = await cli(['sync', '--connector', 'tenant-c', '--json'], { CONNECTOR_SECRETS_KEY: MK2 });
    expect(r.code, r.stderr).toBe(0);
    // The old master key alone opens nothing now: a clear failing reason, exit 1, no crash.
    r = await cli(['sync', '--connector', 'tenant-c'], { CONNECTOR_SECRETS_KEY: MK });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not configured here/);
  });

  it('remove: asks for --yes (exit 2); then every row of that connector is gone, the others stay', async () => {
    let r = await cli(['connectors', 'remove', 'tenant-c']);
    expect(r.code).toBe(2);
    r = await cli(['connectors', 'remove', 'tenant-c', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Removed connector "tenant-c"[\s\S]*revoke/);
    expect(await registered()).toEqual(['tenant-b']);
    const left = await inDb(
      h,
      async (db) =>
        (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs r LEFT JOIN connectors c ON c.id = r.connector_id WHERE c.id IS NULL`))
          .rows[0]!.n,
    );
    expect(left).toBe(0);
    r = await cli(['connectors', 'remove', 'tenant-c', '--yes']);
    expect(r.code).toBe(2);
  });

  it('no table holds a key in any form', async () => {
    const dump = await inDb(h, async (db) => {
      const tables = ['connectors', 'sync_runs', 'change_events', 'tines_users'];
      let text = '';
      for (const t of tables) text += JSON.stringify((await db.query(`SELECT * FROM ${t}`)).rows);
      text += JSON.stringify((await db.query(`SELECT encode(sealed_api_key, 'escape') AS e FROM connectors`)).rows);
      return text;
    });
    for (const s of [KEY_B, KEY_C, KEY_NEW]) expect(dump).not.toContain(s);
  });
});
