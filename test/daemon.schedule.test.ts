// The real daemon (`tines-connector run`) as a child process: a sync at start,
// then on a six-field schedule, never two at once; /healthz, /readyz and
// /metrics; a summary log line per sync; the start line shows the config but
// not the key; SIGTERM stops it cleanly.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import {
  daemonEnv,
  killAllDaemons,
  overlappingRuns,
  RUNS_SQL,
  spawnDaemon,
  sqlReader,
  waitFor,
  type DaemonProcess,
  type RunInterval,
} from './helpers/daemon.js';

const KEY = 'tines-daemon-schedule-key-3b7e91c4d2';
const USERS = 60;

describe.each(backends())('daemon: schedule, health, metrics, logs (%s)', (backend) => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;
  let daemon: DaemonProcess;

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 31 }), apiKey: KEY });
    testDb = await createTestDb(backend);
    env = daemonEnv(fake, testDb, { TINES_API_KEY: KEY, SYNC_SCHEDULE: '*/2 * * * * *' });
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && daemon) console.error(daemon.tail(40));
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  it('syncs at start, then on the schedule, one run at a time', async () => {
    daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
    const start = await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
    expect(start).toMatchObject({ status: 'succeeded', usersAdded: USERS, usersRemoved: 0, usersSeen: USERS, pages: 3 });
    await daemon.waitForLogs((l) => l.msg === 'sync succeeded' && l.trigger === 'schedule', 2, { timeoutMs: 10_000 });

    // Read while the daemon runs, with `tines-connector query --json` (the embedded
    // database answers through the daemon's gateway; PostgreSQL directly).
    const db = sqlReader(testDb, env);
    const runs = await db.cliRows<RunInterval>(RUNS_SQL);
    expect(runs[0]).toMatchObject({ trigger: 'start', status: 'succeeded' });
    const scheduled = runs.filter((r) => r.trigger === 'schedule' && r.status === 'succeeded');
    expect(scheduled.length).toBeGreaterThanOrEqual(2);
    expect(runs.filter((r) => r.trigger === 'start')).toHaveLength(1);
    expect(runs.every((r) => r.trigger !== 'manual')).toBe(true);
    const finished = runs.filter((r) => r.finished !== null);
    expect(overlappingRuns(finished)).toEqual([]);
    // Scheduled runs start on the two-second grid, not back to back.
    for (let i = 1; i < scheduled.length; i++) expect(scheduled[i]!.started - scheduled[i - 1]!.started).toBeGreaterThan(1.5);
    const present = await db.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL');
    expect(present.n).toBe(USERS);
    // Each scheduled run records its slot (on the two-second grid; the environment's connector has no offset),
    // and the run at start none.
    const due = await db.cliRows<{ trigger: string; slot_ms: number | null; late_ms: number | null }>(
      `SELECT trigger, (extract(epoch FROM scheduled_for) * 1000)::bigint % 2000 AS slot_ms,
              (extract(epoch FROM started_at - scheduled_for) * 1000)::int AS late_ms
         FROM sync_runs ORDER BY id`,
    );
    expect(due[0]).toMatchObject({ trigger: 'start', slot_ms: null });
    const dueScheduled = due.filter((r) => r.trigger === 'schedule');
    expect(dueScheduled.length).toBeGreaterThanOrEqual(2);
    for (const r of dueScheduled) {
      expect(Number(r.slot_ms)).toBe(0);
      expect(r.late_ms).toBeGreaterThanOrEqual(0);
    }
    const c = await db.one<{ status: string }>('SELECT status FROM connectors');
    expect(c.status).toBe('active');
  });

  it('logs a summary line per sync with its counts and duration', () => {
    const summaries = daemon.logs('sync succeeded');
    expect(summaries.length).toBeGreaterThanOrEqual(3);
    for (const s of summaries) {
      expect(s).toMatchObject({ level: 'info', status: 'succeeded', usersSeen: USERS, usersRemoved: 0 });
      expect(typeof s.durationMs).toBe('number');
      for (const k of ['usersAdded', 'usersUpdated', 'usersRemoved', 'membershipsAdded', 'membershipsRemoved', 'runId']) expect(typeof s[k]).toBe('number');
      expect(['start', 'schedule']).toContain(s.trigger);
    }
    // A resync of an unchanged tenant changes nothing.
    for (const s of summaries.filter((l) => l.trigger === 'schedule')) expect(s).toMatchObject({ usersAdded: 0, usersUpdated: 0, membershipsAdded: 0 });
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    const health = await daemon.get('/healthz');
    expect(health.status).toBe(200);
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready' });

    const m = await daemon.get('/metrics');
    expect(m.status).toBe(200);
    expect(m.contentType).toMatch(/^text\/plain/);
    const succeeded = /^tines_connector_sync_runs_total\{connector="tines",status="succeeded"\} (\d+)/m.exec(m.body);
    expect(succeeded, m.body.slice(0, 2000)).not.toBeNull();
    expect(Number(succeeded![1])).toBeGreaterThanOrEqual(3);
    expect(m.body).toMatch(new RegExp(`^tines_connector_users_present\\{connector="tines"\\} ${USERS}$`, 'm'));
    expect(m.body).toMatch(/^tines_connector_tines_requests_total\{connector="tines",status="200"\} \d+/m);
    expect(m.body).not.toContain(KEY);
    expect(m.body).not.toContain(KEY.slice(0, 16));
  });

  it('logs the effective configuration at start, without the key', () => {
    const startLine = daemon.logs('tines-connector starting')[0];
    expect(startLine, daemon.tail()).toBeDefined();
    expect(startLine).toMatchObject({
      config: {
        connectorName: 'tines',
        healthPort: daemon.healthPort,
        shutdownTimeoutMs: 5000,
        sync: { schedule: '*/2 * * * * *', timezone: 'UTC', onStart: true },
        tines: { baseUrl: fake.url, pageSize: 20 },
      },
    });
    const cfg = startLine!.config as { tines: Record<string, unknown> };
    expect(cfg.tines.apiKey).toBeUndefined();
    expect(String(startLine!.apiKeyFingerprint)).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(startLine)).not.toContain(KEY);
    // No line at all, nor stderr, carries the key.
    expect(daemon.output).not.toContain(KEY);
    if (testDb.env.DATABASE_URL) {
      const password = new URL(testDb.env.DATABASE_URL).password;
      if (password) expect(daemon.output).not.toContain(password);
    }
  });

  it('says when scheduled syncs were missed because the process was suspended (in a fleet, queues the latest of them)', async () => {
    const from = daemon.lines.length;
    daemon.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 5_000));
    daemon.child.kill('SIGCONT');
    if (backend === 'embedded') {
      const missed = await daemon.waitForLog((l) => l.msg === 'scheduled syncs were missed: the process was busy or suspended at that time', {
        timeoutMs: 10_000,
      });
      // One line for the whole burst, with how many and which.
      expect(missed).toMatchObject({ level: 'warn', component: 'cron' });
      expect(missed.missed).toBeGreaterThanOrEqual(1);
      expect(Date.parse(String(missed.last))).toBeGreaterThanOrEqual(Date.parse(String(missed.first)));
      expect(daemon.logs('scheduled syncs were missed: the process was busy or suspended at that time')).toHaveLength(1);
      return;
    }
    // On a server the slots go to the fleet's queue: the burst's latest is queued late (another process
    // may have queued it on time), one line saying so, and the connector is synced since (by that job,
    // or by the next slot's, which makes it needless).
    const queued = await daemon.waitForLog((l) => l.msg === 'scheduled slots passed while the process was busy; the latest is queued', {
      timeoutMs: 10_000,
      from,
    });
    expect(queued).toMatchObject({ level: 'info', component: 'cron' });
    expect(queued.missed).toBeGreaterThanOrEqual(1);
    const slot = String(queued.last);
    const db = sqlReader(testDb, env);
    await waitFor(
      async () =>
        (await db.cliRows<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE started_at >= '${slot}' AND status = 'succeeded'`))[0]?.n || undefined,
      { timeoutMs: 20_000, what: `a sync since the missed slot ${slot}` },
    );
  });

  it('stops cleanly on SIGTERM: exit 0 within a few seconds', async () => {
    const exit = await daemon.stop({ signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(exit.ms).toBeLessThan(5_000);
    expect(daemon.logs('stopped cleanly')).toHaveLength(1);
    expect(daemon.logs((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toHaveLength(1);

    // Afterwards: nothing left running, and the runs never overlapped.
    const runs = await sqlReader(testDb, env).offlineRows<RunInterval>(RUNS_SQL);
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(overlappingRuns(runs)).toEqual([]);
  });
});
