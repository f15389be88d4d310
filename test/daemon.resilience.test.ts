// PostgreSQL server faults and replicas: the daemon survives its connections
// being killed (pg_terminate_backend) and syncs again at later ticks; two
// daemons on one database never run this connector's syncs at the same time.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import {
  daemonEnv,
  killAllDaemons,
  overlappingRuns,
  RUNS_SQL,
  sleep,
  spawnDaemon,
  sqlReader,
  waitFor,
  type DaemonProcess,
  type RunInterval,
  type SqlReader,
} from './helpers/daemon.js';

const KEY = 'tines-daemon-resilience-key-71e04b9fd3';
const USERS = 60;

// Only a PostgreSQL server has connections to kill and room for two processes.
// Without one (a machine with only the embedded backend), the file says so, and
// CI, which sets REQUIRE_POSTGRES=1, never gets here without a server.
if (!backends().includes('postgres')) {
  it('has no PostgreSQL server to test against, which only a run without REQUIRE_POSTGRES allows', () => {
    expect(process.env.REQUIRE_POSTGRES).not.toBe('1');
  });
}

describe.each(backends().filter((b) => b === 'postgres'))('daemon: database faults and replicas (%s)', (backend) => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;
  let db: SqlReader;
  let daemons: DaemonProcess[] = [];

  /** Terminates every other session on the test database; returns how many. */
  async function killConnections(): Promise<number> {
    const c = new pg.Client({ connectionString: testDb.env.DATABASE_URL });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const r = await c.query<{ killed: boolean }>(
        'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      return r.rows.filter((x) => x.killed).length;
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const maxRunId = async () => Number((await db.rows<{ id: number | null }>('SELECT max(id)::int AS id FROM sync_runs'))[0]!.id ?? 0);

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 61 }), apiKey: KEY });
    // Each sync takes a few hundred ms (3 pages), so faults and ticks meet syncs in flight.
    fake.latencyMs = 100;
    testDb = await createTestDb(backend);
    env = daemonEnv(fake, testDb, { TINES_API_KEY: KEY, SYNC_SCHEDULE: '* * * * * *' });
    db = sqlReader(testDb, env);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') for (const d of daemons) console.error(d.tail(40));
    await killAllDaemons();
    daemons = [];
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  it('survives its database connections being killed; later ticks succeed', async () => {
    const daemon = await spawnDaemon(env, { label: 'daemon' });
    daemons.push(daemon);
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'schedule', { timeoutMs: 5_000 });

    // Twice, a little apart, so that idle pooled connections and (most likely) a sync in flight are both hit.
    const killed = [await killConnections()];
    await sleep(650);
    killed.push(await killConnections());
    expect(killed[0]! + killed[1]!).toBeGreaterThanOrEqual(1);
    const afterKill = await maxRunId();

    await sleep(300);
    expect(daemon.alive, daemon.tail()).toBe(true);
    expect((await daemon.get('/healthz')).status).toBe(200);

    const next = await waitFor(async () => (await db.rows<RunInterval>(RUNS_SQL)).find((r) => r.id > afterKill && r.status === 'succeeded'), {
      timeoutMs: 10_000,
      what: 'a succeeded run after the connections were killed',
    });
    expect(next.trigger).toBe('schedule');
    expect(daemon.alive).toBe(true);
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(200);
    // Every run since the kill was recorded with an outcome (none left running by a broken session).
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.runId === next.id, { timeoutMs: 5_000 });

    const exit = await daemon.stop({ signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(daemon.logs('stopped cleanly')).toHaveLength(1);
    const runs = await db.rows<RunInterval>(RUNS_SQL);
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(overlappingRuns(runs)).toEqual([]);
    const present = await db.rows<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL');
    expect(present[0]!.n).toBe(USERS);
  });

  it('two daemons on one database never run the same connector’s syncs at the same time', async () => {
    const before = await maxRunId();
    const a = await spawnDaemon(env, { label: 'replica A' });
    const b = await spawnDaemon(env, { label: 'replica B' });
    daemons.push(a, b);
    expect(a.healthPort).not.toBe(b.healthPort);
    await Promise.all([a.waitForLog('schedule started', { timeoutMs: 20_000 }), b.waitForLog('schedule started', { timeoutMs: 20_000 })]);
    await sleep(8_000);
    expect(a.alive && b.alive).toBe(true);
    const [ea, eb] = await Promise.all([a.stop({ timeoutMs: 10_000 }), b.stop({ timeoutMs: 10_000 })]);
    expect(ea.code, a.tail()).toBe(0);
    expect(eb.code, b.tail()).toBe(0);

    const runs = (await db.rows<RunInterval>(RUNS_SQL)).filter((r) => r.id > before);
    // The rule: no two runs of this connector overlap, whichever process ran them.
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(overlappingRuns(runs)).toEqual([]);
    expect(runs.filter((r) => r.status === 'succeeded').length).toBeGreaterThanOrEqual(3);
    expect(runs.filter((r) => r.status === 'failed')).toEqual([]);

    const busy = (d: DaemonProcess) => d.logs('another replica is syncing this connector; tick skipped').length;
    const pids = new Set(runs.map((r) => r.pid));
    // Either one replica saw the other's sync and stood aside, or both synced, at different times.
    expect(busy(a) + busy(b) > 0 || (pids.has(a.pid) && pids.has(b.pid)), `busy ticks: A ${busy(a)}, B ${busy(b)}; run pids: ${[...pids].join(', ')}`).toBe(
      true,
    );
  });
});
