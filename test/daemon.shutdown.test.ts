// SIGTERM in the middle of a slow sync: the daemon aborts it, marks its run
// aborted (error_kind shutdown), applies nothing of it and exits 0 within the
// grace period. A second signal during the shutdown exits at once.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, runCli, sleep, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const KEY = 'tines-daemon-shutdown-key-8c2f5a0e71';
const USERS = 200;
const PAGE_SIZE = 10; // 20 pages at 400 ms each: the listing takes about 8 s
const LATENCY_MS = 400;
const GRACE_MS = 5_000;
const SLACK_MS = 3_000;
// The tenant's users have ids 101..300, so users who join with ids 1..12 come first in the listing.
const FIRST_ID = 101;
const NEWCOMERS = 12;

interface RunRow {
  id: number;
  trigger: string;
  status: string;
  error_kind: string | null;
  pages_fetched: number;
  finished: boolean;
  pid: number;
}
const RUNS = `SELECT id::int AS id, pid, trigger, status, error_kind, pages_fetched, finished_at IS NOT NULL AS finished FROM sync_runs ORDER BY id`;

describe.each(backends())('daemon: graceful shutdown (%s)', (backend) => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;
  let db: SqlReader;
  let daemon: DaemonProcess | undefined;
  /** A PostgreSQL session holding a lock that blocks the daemon's writes to sync_runs. */
  let blocker: pg.Client | undefined;

  /** This daemon's run in flight (read through its gateway on embedded) once past `pages` pages. */
  const runningWith = (d: DaemonProcess, pages: number) =>
    waitFor(async () => (await db.rows<RunRow>(RUNS)).find((r) => r.pid === d.pid && r.status === 'running' && r.pages_fetched >= pages), {
      timeoutMs: 20_000,
      intervalMs: 150,
      what: `a run of pid ${d.pid} in flight past page ${pages}`,
    });

  /** Blocks every UPDATE of sync_runs until released: the sync in flight hangs in the database, where no AbortSignal reaches. */
  async function blockRunUpdates(): Promise<void> {
    blocker = new pg.Client({ connectionString: testDb.env.DATABASE_URL });
    blocker.on('error', () => undefined);
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE sync_runs IN SHARE MODE');
  }
  async function releaseBlocker(): Promise<void> {
    const c = blocker;
    blocker = undefined;
    if (!c) return;
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end().catch(() => undefined);
  }

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 47, startId: FIRST_ID }), apiKey: KEY });
    testDb = await createTestDb(backend);
    env = daemonEnv(fake, testDb, {
      TINES_API_KEY: KEY,
      TINES_PAGE_SIZE: String(PAGE_SIZE),
      TINES_TIMEOUT_MS: '10000',
      SYNC_SCHEDULE: '*/2 * * * * *',
      SHUTDOWN_TIMEOUT_MS: String(GRACE_MS),
    });
    db = sqlReader(testDb, env);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && daemon) console.error(daemon.tail(40));
    await killAllDaemons();
    await releaseBlocker();
    daemon = undefined;
    fake.latencyMs = 0;
  });
  afterAll(async () => {
    await killAllDaemons();
    await releaseBlocker();
    await fake?.close();
    await testDb?.dispose();
  });

  it('SIGTERM during a slow first sync: exit 0 in the grace period, run aborted, nothing applied', async () => {
    fake.latencyMs = LATENCY_MS;
    daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
    const run = await runningWith(daemon, 3);
    expect(run.trigger).toBe('start');
    const exit = await daemon.stop({ signal: 'SIGTERM', timeoutMs: GRACE_MS + SLACK_MS });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(exit.ms).toBeLessThan(GRACE_MS + SLACK_MS);
    expect(daemon.logs('stopped cleanly')).toHaveLength(1);
    expect(
      daemon.logs((l) => l.msg === 'sync aborted by shutdown; nothing of it was applied' && l.runId === run.id && l.errorKind === 'shutdown'),
    ).toHaveLength(1);
    expect(daemon.logs('sync succeeded')).toEqual([]);
    // The listing was cut short: far fewer requests than its 20 pages.
    expect(fake.requests.length).toBeLessThan(USERS / PAGE_SIZE);

    const { runs, counts } = await db.offline(async (q) => ({
      runs: await q<RunRow>(RUNS),
      counts: (
        await q<{ users: number; memberships: number; events: number }>(
          `SELECT (SELECT count(*) FROM tines_users)::int AS users, (SELECT count(*) FROM team_memberships)::int AS memberships,
                  (SELECT count(*) FROM change_events)::int AS events`,
        )
      )[0],
    }));
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(runs).toEqual([expect.objectContaining({ id: run.id, trigger: 'start', status: 'aborted', error_kind: 'shutdown', finished: true })]);
    // A first sync interrupted leaves no user, membership or event behind.
    expect(counts).toEqual({ users: 0, memberships: 0, events: 0 });
  });

  it('SIGTERM during a resync: no user removed, no user of the partial listing added', async () => {
    fake.reset();
    // The tenant as it was: one full sync (the `sync` command) stores all of it.
    const first = await runCli(['sync', '--json'], { ...env, LOG_LEVEL: 'warn' });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ result: 'succeeded', counts: { usersAdded: USERS } });

    // Tines changes: 15 users leave (under the removal guard, so a complete
    // listing would remove them) and 12 join on the first pages; the listing is slow.
    for (let id = FIRST_ID + USERS - 15; id < FIRST_ID + USERS; id++) fake.removeUser(id);
    for (const u of generateUsers(NEWCOMERS, { startId: 1, seed: 5 })) fake.addUser(u);
    fake.latencyMs = LATENCY_MS;
    daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
    // Past page 3: the newcomers (pages 1 and 2) are staged by now.
    const run = await runningWith(daemon, 3);
    const exit = await daemon.stop({ signal: 'SIGTERM', timeoutMs: GRACE_MS + SLACK_MS });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(exit.ms).toBeLessThan(GRACE_MS + SLACK_MS);
    expect(daemon.logs('stopped cleanly')).toHaveLength(1);

    const { runs, after, events } = await db.offline(async (q) => ({
      runs: await q<RunRow>(RUNS),
      after: (
        await q<{ present: number; removed: number; newcomers: number }>(
          `SELECT (SELECT count(*) FROM tines_users WHERE removed_at IS NULL)::int AS present,
                  (SELECT count(*) FROM tines_users WHERE removed_at IS NOT NULL)::int AS removed,
                  (SELECT count(*) FROM tines_users WHERE tines_user_id <= ${NEWCOMERS})::int AS newcomers`,
        )
      )[0],
      events: await q<{ kind: string; of_run: number }>(`SELECT DISTINCT kind, (sync_run_id = ${run.id})::int AS of_run FROM change_events ORDER BY kind`),
    }));
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(runs.find((r) => r.id === run.id)).toMatchObject({ status: 'aborted', error_kind: 'shutdown', finished: true });
    expect(after).toEqual({ present: USERS, removed: 0, newcomers: 0 });
    // Only the first sync's events: nothing of the aborted run.
    expect(events).toEqual([
      { kind: 'membership_added', of_run: 0 },
      { kind: 'user_added', of_run: 0 },
    ]);
  });

  it('a second signal during the shutdown exits at once', async () => {
    fake.latencyMs = LATENCY_MS;
    daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
    await runningWith(daemon, 2);
    if (backend === 'postgres') {
      // The sync in flight hangs in the database, so the shutdown would wait out its grace period.
      await blockRunUpdates();
      await sleep(2 * LATENCY_MS);
    }
    daemon.signal('SIGTERM');
    await daemon.waitForLog('shutting down', { timeoutMs: 5_000 });
    if (backend === 'postgres') {
      await daemon.waitForLog('aborting the sync in flight', { timeoutMs: 5_000 });
      await sleep(300);
      expect(daemon.alive, 'still waiting for the stuck sync').toBe(true);
    }
    const sent = Date.now();
    daemon.signal('SIGTERM');
    const exit = await Promise.race([daemon.exited, sleep(GRACE_MS + SLACK_MS).then(() => undefined)]);
    expect(exit, `no exit after the second signal\n${daemon.tail()}`).toBeDefined();
    expect(exit!.at - sent).toBeLessThan(1_500);
    if (backend === 'postgres') {
      // Deterministic here: the shutdown could not have finished on its own.
      expect(exit!.code).not.toBe(0);
      expect(daemon.logs((l) => l.msg === 'second signal: exiting now' && l.signal === 'SIGTERM')).toHaveLength(1);
    }
  });

  // PostgreSQL only: that is where a sync can be held inside the database from outside.
  if (backend === 'postgres')
    it('a sync stuck in the database past the grace period: the process still exits soon after SHUTDOWN_TIMEOUT_MS', async () => {
      const grace = 2_000;
      fake.latencyMs = LATENCY_MS;
      daemon = await spawnDaemon({ ...env, SHUTDOWN_TIMEOUT_MS: String(grace) }, { label: `daemon (${backend})` });
      await runningWith(daemon, 2);
      await blockRunUpdates();
      await sleep(2 * LATENCY_MS);
      const sent = Date.now();
      daemon.signal('SIGTERM');
      const exit = await Promise.race([daemon.exited, sleep(grace + SLACK_MS).then(() => undefined)]);
      const elapsed = Date.now() - sent;
      // Whatever happens, let the daemon go before asserting.
      await releaseBlocker();
      expect(daemon.logs('the sync in flight did not stop within the grace period')).toHaveLength(1);
      expect(exit, `still running ${elapsed} ms after SIGTERM with SHUTDOWN_TIMEOUT_MS=${grace}\n${daemon.tail()}`).toBeDefined();
      expect(exit!.code).not.toBe(0);
      expect(exit!.at - sent).toBeGreaterThanOrEqual(grace - 100);
    });
});
