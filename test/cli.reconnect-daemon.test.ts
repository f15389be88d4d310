// `reconnect`, the advice of a 401, in the default setup: the embedded database
// held by a running daemon. It goes through the daemon (as `sync` does), which
// makes the call with the key it uses and records the answer.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, runCli, spawnDaemon, sqlReader, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const KEY = 'tines-reconnect-daemon-key-1c9e7f';

describe('`reconnect` while a daemon holds the embedded database', () => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;
  let daemon: DaemonProcess;
  let db: SqlReader;
  const state = async () => (await db.rows<{ status: string }>('SELECT status FROM connectors'))[0]?.status;

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(20, { seed: 9 }), apiKey: KEY });
    testDb = await createTestDb('embedded');
    // One sync at start, then none for a year: only the commands below call Tines.
    env = daemonEnv(fake, testDb, { TINES_API_KEY: KEY, SYNC_SCHEDULE: '0 0 1 1 *' });
    db = sqlReader(testDb, env);
    daemon = await spawnDaemon(env, { label: 'daemon (embedded)' });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  it('the daemon`s start line carries the package version', async () => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    expect(daemon.logs('tines-connector starting')[0]).toMatchObject({ version });
  });

  it('a revoked key: `sync` says reconnect required, `reconnect` (through the daemon) still refused, exit 3', async () => {
    fake.validKeys.clear();
    const sync = await runCli(['sync'], env);
    expect(sync.code, sync.stdout + sync.stderr).toBe(3);
    expect(await state()).toBe('reconnect_required');
    const r = await runCli(['reconnect'], env);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/still refused/);
    expect(r.stdout).toMatch(/done by the daemon that holds/);
    expect(r.stderr).not.toMatch(/in use/);
  });

  it('the key valid again: `reconnect` exits 0 and the connector is active; the daemon stays up', async () => {
    fake.validKeys.add(KEY);
    const before = fake.requests.length;
    const r = await runCli(['reconnect'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Tines accepted the key sha256:[0-9a-f]{16}.*active again \(was reconnect_required\)/);
    expect(fake.requests.length).toBeGreaterThan(before);
    expect(await state()).toBe('active');
    expect(daemon.alive).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(KEY);
  });

  it('a shell whose key differs from the daemon`s is told which key the daemon used', async () => {
    const r = await runCli(['reconnect'], { ...env, TINES_API_KEY: 'another-key-in-this-shell' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/this shell's key is sha256:[0-9a-f]{16}, the daemon's is sha256:[0-9a-f]{16}/);
  });
});
