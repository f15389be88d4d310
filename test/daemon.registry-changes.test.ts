// A running `run` without TINES_TENANT_DOMAIN serves the registered connectors
// and follows the registry without a restart: a connector added with the CLI
// (the server: NOTIFY; the embedded database: the daemon's admin socket) or the
// admin API is synced within seconds; a new key is used at the next sync; one
// removed while its sync runs leaves no row behind and is not served any more.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { childCwd } from './helpers/cli.js';
import { freePort, killAllDaemons, runCli, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const DIR = childCwd('tines-connector-registry-changes-');
const MK = randomBytes(32).toString('base64');
const TOKEN = `admin-${randomBytes(12).toString('hex')}`;
const KEY_A = 'tk_changes_a_19f0';
const KEY_B = 'tk_changes_b_77c2';
const KEY_A2 = 'tk_changes_a2_5b3e';
const KEY_SLOW = 'tk_changes_slow_0d4a';

describe.each(backends())('registry changes under a running daemon (%s)', (backend) => {
  let fake: FakeTines;
  let slow: FakeTines;
  let testDb: TestDb;
  let daemon: DaemonProcess;
  let sql: SqlReader;
  let api: string;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, { ...env, LOG_LEVEL: 'warn' });
  const keyFile = (key: string) => {
    const f = join(DIR, `${backend}-${key}`);
    writeFileSync(f, key);
    return f;
  };
  const succeeded = async (name: string) =>
    Number(
      (
        await sql.rows<{ n: number }>(
          `SELECT count(*)::int AS n FROM sync_runs r JOIN connectors c ON c.id = r.connector_id WHERE c.name = '${name}' AND r.status = 'succeeded'`,
        )
      )[0]!.n,
    );
  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    fake = await FakeTines.start({ apiKey: 'tk_unused_default' });
    fake.addTenant(KEY_A, generateUsers(6, { seed: 1 }));
    fake.addTenant(KEY_B, generateUsers(4, { seed: 2, startId: 100 }));
    fake.addTenant(KEY_A2, generateUsers(6, { seed: 1 }));
    // A tenant slow enough that its first sync is still running when it is removed.
    slow = await FakeTines.start({ users: generateUsers(200, { seed: 3 }), apiKey: KEY_SLOW });
    slow.latencyMs = 400;
    testDb = await createTestDb(backend);
    const adminPort = await freePort();
    api = `http://127.0.0.1:${adminPort}`;
    env = {
      ...testDb.env,
      CONNECTOR_SECRETS_KEY: MK,
      ADMIN_TOKEN: TOKEN,
      ADMIN_PORT: String(adminPort),
      SYNC_SCHEDULE: '*/2 * * * * *',
      SYNC_SPREAD_SECONDS: '1',
      TINES_PAGE_SIZE: '20',
      TINES_REQUESTS_PER_MINUTE: '100000',
      TINES_MAX_RETRIES: '1',
      TINES_TIMEOUT_MS: '5000',
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    daemon = await spawnDaemon(env, { label: `changes-${backend}` });
    sql = sqlReader(testDb, daemon.env);
    await daemon.waitForLog(/no connector yet: waiting for one to be added/, { timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await slow?.close();
    await testDb?.dispose();
  });

  it('without TINES_TENANT_DOMAIN it serves nothing yet and is ready', async () => {
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(200);
    expect((await call('GET', '/api/connectors')).body).toEqual({ connectors: [] });
  });

  it('a connector added with the CLI is synced within seconds, without a restart', async () => {
    const r = await cli(['connectors', 'add', '--name', 'tenant-a', '--domain', fake.url, '--key-file', keyFile(KEY_A)]);
    expect(r.code, r.stderr).toBe(0);
    const t0 = Date.now();
    await waitFor(async () => (await succeeded('tenant-a')) > 0, { timeoutMs: 15_000, what: 'a sync of tenant-a' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const status = await cli(['status', '--connector', 'tenant-a', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).connectors[0]).toMatchObject({ name: 'tenant-a', status: 'active', users_present: 6 });
  });

  it('the admin API on the running daemon: token required, a connector added is synced; sync now 202', async () => {
    expect((await call('GET', '/api/connectors', undefined, 'wrong-token-0000000000')).status).toBe(401);
    const noAuth = await fetch(`${api}/api/connectors`);
    expect(noAuth.status).toBe(401);
    const added = await call('POST', '/api/connectors', { name: 'tenant-b', tenant_domain: fake.url, api_key: KEY_B, schedule: '*/3 * * * * *' });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    await waitFor(async () => (await succeeded('tenant-b')) > 0, { timeoutMs: 15_000, what: 'a sync of tenant-b' });
    const sync = await call('POST', '/api/connectors/tenant-a/sync');
    expect([202, 409]).toContain(sync.status);
    const shown = await call('GET', '/api/connectors/tenant-b');
    expect(shown.body.runs.length).toBeGreaterThan(0);
  });

  it('two `connectors add` of one name at once: one saves (exit 0), the other gets exit 2', async () => {
    fake.latencyMs = 300; // both are past the name check before either saves
    try {
      const [x, y] = await Promise.all([
        cli(['connectors', 'add', '--name', 'twin', '--domain', fake.url, '--key-file', keyFile(KEY_B)]),
        cli(['connectors', 'add', '--name', 'twin', '--domain', fake.url, '--key-file', keyFile(KEY_B)]),
      ]);
      expect([x.code, y.code].sort(), `${x.stderr}\n${y.stderr}`).toEqual([0, 2]);
      expect(`${x.stderr}${y.stderr}`).toMatch(/"twin" already exists/);
    } finally {
      fake.latencyMs = 0;
    }
    expect((await call('GET', '/api/connectors')).body.connectors.filter((c: { name: string }) => c.name === 'twin')).toHaveLength(1);
    expect((await call('DELETE', '/api/connectors/twin')).status).toBe(200);
  });

  it('a new key (set-key) is used from the next sync on', async () => {
    const r = await cli(['connectors', 'set-key', 'tenant-a', '--key-file', keyFile(KEY_A2)]);
    expect(r.code, r.stderr).toBe(0);
    const before = fake.requests.filter((q) => q.auth === `Bearer ${KEY_A2}`).length;
    await waitFor(() => fake.requests.filter((q) => q.auth === `Bearer ${KEY_A2}`).length > before + 1, { timeoutMs: 10_000, what: 'a sync with the new key' });
  });

  it('a connector removed while its sync runs: the sync ends, no row of it is left, it is not served any more', async () => {
    const added = await call('POST', '/api/connectors', { name: 'tenant-slow', tenant_domain: slow.url, api_key: KEY_SLOW });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const id = Number(added.body.connector.id);
    await waitFor(
      async () =>
        (await sql.rows<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE connector_id = ${id} AND status = 'running' AND pages_fetched >= 1`))[0]!
          .n > 0,
      { timeoutMs: 15_000, intervalMs: 100, what: 'a running sync of tenant-slow' },
    );
    const from = daemon.lines.length;
    const r = await cli(['connectors', 'remove', 'tenant-slow', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    await daemon.waitForLog((l) => l.connector === 'tenant-slow' && /no longer served|no longer syncs it/.test(String(l.msg)), { from, timeoutMs: 15_000 });
    // Its sync in flight says why it stopped: the removal, not a shutdown.
    await daemon.waitForLog((l) => l.connector === 'tenant-slow' && l.msg === 'sync aborted: its connector was removed; nothing of it was applied', {
      from,
      timeoutMs: 15_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const requestsAfter = slow.requests.length;
    const left = await sql.rows<{ t: string; n: number }>(
      `SELECT 'connectors' AS t, count(*)::int AS n FROM connectors WHERE id = ${id} OR name = 'tenant-slow'
       UNION ALL SELECT 'tines_users', count(*)::int FROM tines_users WHERE connector_id = ${id}
       UNION ALL SELECT 'team_memberships', count(*)::int FROM team_memberships WHERE connector_id = ${id}
       UNION ALL SELECT 'sync_runs', count(*)::int FROM sync_runs WHERE connector_id = ${id}
       UNION ALL SELECT 'change_events', count(*)::int FROM change_events WHERE connector_id = ${id}
       UNION ALL SELECT 'listing_pages', count(*)::int FROM listing_pages WHERE connector_id = ${id}`,
    );
    expect(left.filter((row) => row.n > 0)).toEqual([]);
    // Not served any more: no request to its tenant for longer than its schedule's period.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(slow.requests.length).toBe(requestsAfter);
    // The others go on.
    const a = await succeeded('tenant-a');
    await waitFor(async () => (await succeeded('tenant-a')) > a, { timeoutMs: 10_000, what: 'tenant-a still synced' });
  });

  // Only the embedded database sends the CLI's changes through the daemon; on the server the CLI writes itself.
  if (backend === 'embedded') {
    it('through the daemon, a shell with another master key or none is refused (exit 2), and nothing is resealed', async () => {
      const before = await sql.rows<{ name: string; sealed_key_id: string }>(
        `SELECT name, sealed_key_id FROM connectors WHERE source = 'registry' ORDER BY name`,
      );
      const other = randomBytes(32).toString('base64');
      const rekey = await runCli(['connectors', 'rekey'], { ...env, CONNECTOR_SECRETS_KEY: other, CONNECTOR_SECRETS_KEY_PREVIOUS: MK, LOG_LEVEL: 'warn' });
      expect(rekey.code, rekey.stderr).toBe(2);
      expect(rekey.stderr).toMatch(/the daemon that holds .* seals with master key mk-\w+, this shell's CONNECTOR_SECRETS_KEY is mk-\w+/);
      expect(rekey.stdout).not.toMatch(/can be unset/);
      const withoutKey = { ...env, LOG_LEVEL: 'warn' } as Record<string, string>;
      delete withoutKey.CONNECTOR_SECRETS_KEY;
      const add = await runCli(['connectors', 'add', '--name', 'no-master-key', '--domain', fake.url, '--key-file', keyFile(KEY_B)], withoutKey);
      expect(add.code, add.stderr).toBe(2);
      expect(add.stderr).toMatch(/CONNECTOR_SECRETS_KEY/);
      expect(await sql.rows(`SELECT name, sealed_key_id FROM connectors WHERE source = 'registry' ORDER BY name`)).toEqual(before);
    });
  }

  it('stops cleanly; no key in its output', async () => {
    const stopped = await daemon.stop();
    expect(stopped.code).toBe(0);
    for (const k of [KEY_A, KEY_B, KEY_A2, KEY_SLOW, TOKEN, MK]) expect(daemon.output).not.toContain(k);
  });
});
