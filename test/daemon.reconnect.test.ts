// A key revoked in Tines puts the running daemon's connector in
// reconnect_required; later ticks leave Tines alone until the key changes; a
// new key written into TINES_API_KEY_FILE brings it back without a restart.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, sleep, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const OLD_KEY = 'tines-daemon-old-key-5d0a7c31e9f2';
const NEW_KEY = 'tines-daemon-new-key-a94be2075c18';
const USERS = 30;

interface ConnectorRow {
  status: string;
  status_reason: string | null;
  api_key_fingerprint: string;
}
const CONNECTOR = `SELECT status, status_reason, api_key_fingerprint FROM connectors`;

describe.each(backends())('daemon: reconnect through a rotated key file (%s)', (backend) => {
  let fake: FakeTines;
  let testDb: TestDb;
  let keyDir: string;
  let keyFile: string;
  let env: Record<string, string>;
  let db: SqlReader;
  let daemon: DaemonProcess;

  /** Replaces the key file in one step, as a secret mount does. */
  function writeKey(key: string): void {
    const tmp = join(keyDir, `.key-${process.pid}-${Date.now()}`);
    writeFileSync(tmp, `${key}\n`, { mode: 0o600 });
    renameSync(tmp, keyFile);
  }

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 53 }), apiKey: OLD_KEY });
    testDb = await createTestDb(backend);
    keyDir = mkdtempSync(join(tmpdir(), 'tines-connector-keyfile-'));
    keyFile = join(keyDir, 'tines-api-key');
    writeKey(OLD_KEY);
    env = daemonEnv(fake, testDb, { TINES_API_KEY_FILE: keyFile, SYNC_SCHEDULE: '* * * * * *' });
    db = sqlReader(testDb, env);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && daemon) console.error(daemon.tail(40));
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it('syncs with the key from the file', async () => {
    daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
    const c = await waitFor(async () => (await db.rows<ConnectorRow>(CONNECTOR))[0], { what: 'the connector row' });
    expect(c.status).toBe('active');
  });

  let refusedFingerprint: string;

  it('a revoked key: the next tick makes the connector reconnect_required', async () => {
    fake.validKeys.clear();
    const c = await waitFor(async () => (await db.rows<ConnectorRow>(CONNECTOR)).find((r) => r.status === 'reconnect_required'), {
      timeoutMs: 10_000,
      what: 'connector status reconnect_required',
    });
    expect(c.status_reason).toBeTruthy();
    expect(c.status_reason).not.toContain(OLD_KEY);
    refusedFingerprint = c.api_key_fingerprint;
    expect(fake.requests.some((r) => r.status === 401)).toBe(true);

    const failed = await db.rows<{ status: string; error_kind: string }>(`SELECT status, error_kind FROM sync_runs WHERE error_kind = 'auth'`);
    expect(failed).toEqual([{ status: 'failed', error_kind: 'auth' }]);
    const events = await db.rows<{ n: number }>(`SELECT count(*)::int AS n FROM change_events WHERE kind = 'connector_status_changed'`);
    expect(events[0]!.n).toBe(1);
    // No data is removed for a refused key.
    const present = await db.rows<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL');
    expect(present[0]!.n).toBe(USERS);
  });

  it('while the key is unchanged, ticks make no request to Tines', async () => {
    const skip = (l: { msg?: string }) => typeof l.msg === 'string' && l.msg.includes('needs a reconnect and its API key has not changed');
    await daemon.waitForLog(skip, { timeoutMs: 5_000 });
    const requests = fake.requests.length;
    const skipsBefore = daemon.logs(skip).length;
    await sleep(3_000);
    expect(fake.requests.length).toBe(requests);
    // The ticks did happen: each one said why it left Tines alone.
    expect(daemon.logs(skip).length - skipsBefore).toBeGreaterThanOrEqual(2);
    const c = (await db.rows<ConnectorRow>(CONNECTOR))[0]!;
    expect(c.status).toBe('reconnect_required');

    const m = await daemon.get('/metrics');
    expect(m.body).toMatch(/^tines_connector_status\{connector="tines",status="reconnect_required"\} 1$/m);
    expect(m.body).not.toContain(OLD_KEY);
  });

  it('a new key in the key file makes the connector active again without a restart', async () => {
    fake.validKeys.add(NEW_KEY);
    writeKey(NEW_KEY);
    const c = await waitFor(async () => (await db.rows<ConnectorRow>(CONNECTOR)).find((r) => r.status === 'active'), {
      timeoutMs: 10_000,
      what: 'connector status active again',
    });
    expect(c.status_reason).toBeNull();
    expect(c.api_key_fingerprint).not.toBe(refusedFingerprint);
    expect(daemon.alive).toBe(true);
    const accepted = await daemon.waitForLog('Tines accepted the new API key; the connector is active again', { timeoutMs: 5_000 });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'schedule', { timeoutMs: 5_000, from: daemon.lines.indexOf(accepted) });
    expect(daemon.logs('tines-connector starting')).toHaveLength(1); // the same process throughout
    expect(fake.requests.at(-1)!.auth).toBe(`Bearer ${NEW_KEY}`);

    const events = await db.rows<{ from: string; to: string }>(
      `SELECT details->'status'->>'from' AS from, details->'status'->>'to' AS to FROM change_events WHERE kind = 'connector_status_changed' ORDER BY id`,
    );
    expect(events).toEqual([
      { from: 'active', to: 'reconnect_required' },
      { from: 'reconnect_required', to: 'active' },
    ]);

    const exit = await daemon.stop({ signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(exit.code, daemon.tail()).toBe(0);
    // Neither key anywhere in the output.
    expect(daemon.output).not.toContain(OLD_KEY);
    expect(daemon.output).not.toContain(NEW_KEY);
  });
});
