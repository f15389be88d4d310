// A fleet (CONTRACT.md, "A fleet"; issue 17): three `run` processes on one
// PostgreSQL share twelve registered connectors on a seconds schedule, through
// the shared job queue. Each slot of a connector is synced once in the fleet,
// never two syncs of one connector at once, by more than one process. Then the
// failures, one after the other on the same fleet:
// - SIGKILL of the process running a slow sync: its run ends `aborted` and
//   another process syncs the connector, through the job's expiry alone (the
//   connector's schedule does not fire during the test);
// - SIGTERM of the process running a slow sync: it exits 0 within
//   SHUTDOWN_TIMEOUT_MS, its run `aborted` (shutdown), its job handed back and
//   synced by another process, while the others go on;
// - a database restart (every connection terminated, new ones refused for a
//   few seconds) in the middle of a sync: the processes stay up, every
//   connector syncs again, once (not once per slot missed), the sync cut off too.
// At the end every tenant's data equals the fake's.
// PostgreSQL only: the fleet is a server behaviour (the embedded database is one process).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadSettings, type Settings } from '../src/config.js';
import { insertRegistered } from '../src/connectors/registry.js';
import { FakeTines, generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, overlappingRuns, sleep, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type SqlReader } from './helpers/daemon.js';
import { databaseOf, doubledSlots, FLEET_RUNS_SQL, groupBy, simulateDatabaseRestart, type FleetRun } from './helpers/fleet.js';

const MK = randomBytes(32).toString('hex');
const REPLICAS = 3;
const FAST_N = 12;
const SLOT_S = 3;
const USERS_EACH = 30;
/** The slow tenants: 16 pages of 20, each answered 300 ms late, so a sync lasts a few seconds. */
const SLOW_USERS = 320;
const SLOW_LATENCY_MS = 300;
/**
 * A schedule that does not fire during the test (midnight on the 1st of each month), so only a start job
 * (or its hand-over) syncs the slow connectors; its last slot is less than 35 days back, so every process
 * keys its start job by that slot and the fleet holds one start job per connector (see spread.ts, previousSlot).
 */
const QUIET_SCHEDULE = '0 0 1 * *';
const STALL_S = 30;
/** How long a job stays active before pg-boss may put it back: max(10, SYNC_STALL_SECONDS − 30) (sync-queue.ts). */
const EXPIRE_S = Math.max(10, STALL_S - 30);
const GRACE_MS = 5_000;
/** The database restart: connections refused this long, two or three slots of each fast connector. */
const OUTAGE_MS = 7_000;
const SLACK_MS = 3_000;

const fastName = (i: number) => `fast-${String(i).padStart(2, '0')}`;
const keyOf = (label: string) => `tk_fleet_${label}_${randomBytes(4).toString('hex')}`;

describe('a fleet of run processes on one PostgreSQL', () => {
  let fast: FakeTines;
  let slow: FakeTines;
  let testDb: TestDb;
  let settings: Settings;
  let env: Record<string, string>;
  let sql: SqlReader;
  /** Every process started, in order (the dead stay, for their logs). */
  const replicas: DaemonProcess[] = [];
  /** Each connector's key at the fake, by connector name. */
  const keys = new Map<string, string>();
  const fakeOf = new Map<string, FakeTines>();
  let spawned = 0;

  const live = () => replicas.filter((r) => r.alive);
  const spawnReplica = async () => {
    const d = await spawnDaemon(env, { label: `replica-${++spawned}` });
    replicas.push(d);
    return d;
  };
  const tails = () =>
    live()
      .map((r) => r.tail(15))
      .join('\n');
  const runs = () => sql.rows<FleetRun>(FLEET_RUNS_SQL);
  const runsOf = async (name: string) => (await runs()).filter((r) => r.name === name);

  async function register(name: string, fake: FakeTines, key: string, schedule: string | null): Promise<void> {
    keys.set(name, key);
    fakeOf.set(name, fake);
    const db = await testDb.open();
    try {
      await insertRegistered(db, settings, { name, tenantDomain: new URL(fake.url).host, schedule, apiKey: key });
    } finally {
      await db.close();
    }
  }

  /** A slow connector added while the fleet runs: its start job is taken by one process; resolves with that run once it is under way. */
  async function addSlowConnector(name: string): Promise<FleetRun> {
    const key = keyOf(name);
    slow.addTenant(key, generateUsers(SLOW_USERS, { seed: name.length * 7, startId: 500_000 + 10_000 * keys.size }));
    await register(name, slow, key, QUIET_SCHEDULE);
    return waitFor(
      async () => {
        const [r] = await runsOf(name);
        return r?.status === 'running' && r.pages >= 2 && r;
      },
      { timeoutMs: 30_000, intervalMs: 150, what: `a sync of ${name} under way` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${tails()}`);
    });
  }

  beforeAll(async () => {
    fast = await FakeTines.start({ apiKey: keyOf('unused') });
    slow = await FakeTines.start({ apiKey: keyOf('unused-slow') });
    slow.latencyMs = SLOW_LATENCY_MS;
    testDb = await createTestDb('postgres');
    settings = loadSettings({ ...testDb.env, CONNECTOR_SECRETS_KEY: MK });
    for (let i = 0; i < FAST_N; i++) {
      const key = keyOf(`fast${i}`);
      fast.addTenant(key, generateUsers(USERS_EACH, { seed: 200 + i, startId: 10_000 * (i + 1) }));
      await register(fastName(i), fast, key, null);
    }
    env = daemonEnv(fast, testDb, {
      CONNECTOR_SECRETS_KEY: MK,
      SYNC_SCHEDULE: `*/${SLOT_S} * * * * *`,
      SYNC_SPREAD_SECONDS: '1',
      SYNC_CONCURRENCY: '3',
      SYNC_STALL_SECONDS: String(STALL_S),
      SHUTDOWN_TIMEOUT_MS: String(GRACE_MS),
      TINES_TIMEOUT_MS: '10000',
    });
    delete env.TINES_TENANT_DOMAIN; // registered connectors only
    sql = sqlReader(testDb, env);
    for (let i = 0; i < REPLICAS; i++) await spawnReplica();
    for (const r of replicas) await r.waitForLog('health server listening: /healthz /readyz /metrics', { timeoutMs: 30_000 });
    await waitFor(async () => (await Promise.all(replicas.map((r) => r.get('/readyz').then((x) => x.status === 200)))).every(Boolean), {
      timeoutMs: 60_000,
      what: 'every replica ready',
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${tails()}`);
    });
  }, 120_000);

  afterAll(async () => {
    await killAllDaemons();
    await fast?.close();
    await slow?.close();
    await testDb?.dispose();
  });

  it('each slot of each connector is synced once in the fleet, never two syncs of one connector at once, by more than one process', async () => {
    const from = Date.now() / 1000 + 1;
    const SLOTS = 4;
    await waitFor(
      async () => {
        const done = (await runs()).filter((r) => r.status === 'succeeded' && r.scheduled_for !== null && r.scheduled_for >= from);
        const per = groupBy(done, (r) => r.name);
        return per.size === FAST_N && [...per.values()].every((rs) => rs.length >= SLOTS);
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `${SLOTS} scheduled syncs of every connector` },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nruns: ${JSON.stringify((await runs()).slice(-30))}\n${tails()}`);
    });
    const to = Date.now() / 1000;
    const all = await runs();
    const window = all.filter((r) => r.scheduled_for !== null && r.scheduled_for >= from && r.scheduled_for <= to);
    // Every scheduled sync of the window succeeded (or is still going at its end).
    expect(
      window.filter((r) => r.status !== 'succeeded' && r.status !== 'running'),
      'scheduled runs neither succeeded nor running',
    ).toEqual([]);
    // Exactly one run per (connector, slot): none doubled, and the slots each connector ran are distinct.
    expect(doubledSlots(window)).toEqual([]);
    for (const [name, rs] of groupBy(window, (r) => r.name)) {
      expect(new Set(rs.map((r) => r.scheduled_for)).size, name).toBe(rs.length);
    }
    // Never two syncs of one connector at once, whoever ran them (start syncs included).
    for (const [name, rs] of groupBy(all, (r) => r.name)) expect(overlappingRuns(rs), name).toEqual([]);
    // Spread over the processes.
    const byPid = groupBy(window, (r) => r.pid);
    expect(byPid.size, `runs per pid: ${JSON.stringify([...byPid].map(([p, rs]) => [p, rs.length]))}`).toBeGreaterThan(1);
    for (const pid of byPid.keys()) expect(replicas.map((r) => r.pid)).toContain(pid);
    // Slots the window held that no run claimed: the catch-up check skips a slot whose connector ran since it was due (figure only).
    let due = 0;
    for (const rs of groupBy(window, (r) => r.name).values()) {
      const slots = rs.map((r) => r.scheduled_for!).sort((a, b) => a - b);
      due += Math.round((slots[slots.length - 1]! - slots[0]!) / SLOT_S) + 1;
    }
    const lateness = window.map((r) => (r.started - r.scheduled_for!) * 1000).sort((a, b) => a - b);
    console.log(
      `fleet steady state: ${window.length} scheduled syncs of ${due} slots due between each connector's first and last; runs per process ${JSON.stringify(
        [...byPid.values()].map((rs) => rs.length),
      )}; lateness p50 ${Math.round(lateness[Math.floor(lateness.length / 2)]!)} ms, max ${Math.round(lateness[lateness.length - 1]!)} ms`,
    );
    expect(window.length).toBeGreaterThanOrEqual(FAST_N * SLOTS);

    // The tenants change under the fleet: the final data (last test) must follow.
    for (let i = 0; i < 4; i++) {
      const users = fast.usersOf(keys.get(fastName(i))!);
      const [first] = [...users.values()];
      users.set(first!.id, { ...first!, last_name: `Changed${i}`, updated_at: new Date().toISOString() } as FakeUser);
      users.delete([...users.keys()][users.size - 1]!);
      const [newcomer] = generateUsers(1, { seed: 900 + i, startId: 10_000 * (i + 1) + 5_000 });
      users.set(newcomer!.id, newcomer!);
    }
  }, 120_000);

  it('SIGKILL of the process running a sync: its run ends aborted and another process syncs the connector within about SYNC_STALL_SECONDS', async () => {
    const run = await addSlowConnector('slow-kill');
    const victim = replicas.find((r) => r.pid === run.pid);
    expect(victim, `the run's pid ${run.pid} is one of the replicas`).toBeDefined();
    await victim!.kill();
    const killedAt = Date.now();
    expect(victim!.exit?.signal).toBe('SIGKILL');
    // A process joining now queues the same start job (same slot, same id): it adds no sync.
    await spawnReplica();

    const takeover = await waitFor(async () => (await runsOf('slow-kill')).find((r) => r.pid !== victim!.pid && r.status === 'succeeded'), {
      timeoutMs: (STALL_S + 60) * 1000,
      intervalMs: 500,
      what: 'another process syncing slow-kill',
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nruns: ${JSON.stringify(await runsOf('slow-kill'))}\n${tails()}`);
    });
    const takeoverMs = Math.round(takeover.started * 1000 - killedAt);
    console.log(
      `SIGKILL hand-over: another process started slow-kill's sync ${takeoverMs} ms after the kill (${Math.round(
        (takeover.started - run.started) * 1000,
      )} ms after the killed sync started; SYNC_STALL_SECONDS=${STALL_S}); that sync took ${Math.round((takeover.finished! - takeover.started) * 1000)} ms`,
    );
    // Through the job's expiry: nothing else queued a sync of slow-kill.
    expect(takeover.started - run.started, 'the hand-over came before the job could expire').toBeGreaterThanOrEqual(EXPIRE_S - 1);
    const after = await runsOf('slow-kill');
    // The killed sync's run, marked aborted by the one that took over; then that one, once: no third run.
    expect(after.map((r) => ({ id: r.id, status: r.status, error_kind: r.error_kind, pid: r.pid }))).toEqual([
      { id: run.id, status: 'aborted', error_kind: 'shutdown', pid: victim!.pid },
      { id: takeover.id, status: 'succeeded', error_kind: null, pid: takeover.pid },
    ]);
    expect(after[0]!.finished!).toBeLessThan(takeover.started);
    expect(replicas.map((r) => r.pid)).toContain(takeover.pid);
    // The survivors lived through it.
    for (const r of live()) expect((await r.get('/healthz')).status).toBe(200);
    expect(live()).toHaveLength(REPLICAS);
  }, 150_000);

  it('SIGTERM of the process running a sync: it exits 0 within SHUTDOWN_TIMEOUT_MS, its run aborted, its job handed back and synced by another process; the others go on', async () => {
    const run = await addSlowConnector('slow-term');
    const victim = replicas.find((r) => r.pid === run.pid && r.alive);
    expect(victim, `the run's pid ${run.pid} is one of the live replicas`).toBeDefined();
    const exit = await victim!.stop({ signal: 'SIGTERM', timeoutMs: GRACE_MS + SLACK_MS });
    const exitedAt = exit.at;
    expect(exit.code, victim!.tail()).toBe(0);
    expect(exit.ms).toBeLessThan(GRACE_MS + SLACK_MS);
    expect(victim!.logs('stopped cleanly')).toHaveLength(1);
    const aborted = (await runsOf('slow-term')).find((r) => r.id === run.id);
    expect(aborted).toMatchObject({ status: 'aborted', error_kind: 'shutdown', pid: victim!.pid });
    expect(aborted!.finished).not.toBeNull();
    // Handed back (not left active to expire): back in the queue, or already taken again since the exit.
    const id = (await sql.one<{ id: number }>(`SELECT id::int AS id FROM connectors WHERE name = 'slow-term'`)).id;
    const jobs = await sql.rows<{ state: string; retry_count: number; started: number | null }>(
      `SELECT state, retry_count, extract(epoch FROM started_on)::float8 AS started FROM pgboss.job WHERE name = 'tines-sync' AND singleton_key = '${id}'`,
    );
    expect(jobs, 'one job for the connector').toHaveLength(1);
    // 'retry' is a job handed back (pg-boss counts the retry when the job is taken again); one left active
    // would stay 'active', started before the exit, until it expires (EXPIRE_S after it started).
    const job = jobs[0]!;
    if (job.state !== 'retry')
      expect(job.state !== 'created' && job.started! * 1000 > exitedAt - 1000, `taken again after the exit: ${JSON.stringify(job)}`).toBe(true);

    const taken = await waitFor(async () => (await runsOf('slow-term')).find((r) => r.pid !== victim!.pid && r.status === 'succeeded'), {
      timeoutMs: 60_000,
      intervalMs: 300,
      what: 'another process syncing slow-term',
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nruns: ${JSON.stringify(await runsOf('slow-term'))}\n${tails()}`);
    });
    console.log(
      `SIGTERM hand-over: exit ${exit.ms} ms after the signal; another process started slow-term's sync ${Math.round(taken.started * 1000 - exitedAt)} ms after the exit`,
    );
    expect((await runsOf('slow-term')).map((r) => r.status)).toEqual(['aborted', 'succeeded']);

    // The others go on: each connector synced again after the exit, by the survivors.
    await waitFor(
      async () => {
        const later = (await runs()).filter((r) => r.name.startsWith('fast-') && r.status === 'succeeded' && r.started * 1000 > exitedAt);
        return groupBy(later, (r) => r.name).size === FAST_N && later.every((r) => r.pid !== victim!.pid);
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'every fast connector synced after the SIGTERM' },
    );
    expect(live()).toHaveLength(REPLICAS - 1);
  }, 120_000);

  it('a database restart (every connection terminated, new ones refused for 7 s) in the middle of a sync: the processes stay up, then every connector catches up with one sync', async () => {
    const adminUrl = inject('pgAdminUrl')!;
    const before = live();
    expect(before.length).toBeGreaterThan(1);
    // A sync under way when the database goes: a second a page, so it is cut off, not finished, by the outage.
    slow.latencyMs = 1_000;
    const cut = await addSlowConnector('slow-outage');
    let healthChecks = 0;
    const healthFailures: string[] = [];
    let watching = true;
    const watchHealth = (async () => {
      while (watching) {
        for (const r of before) {
          healthChecks++;
          const s = await r.get('/healthz').then(
            (x) => String(x.status),
            (e: Error) => e.message,
          );
          if (s !== '200') healthFailures.push(`${r.label}: ${s}`);
        }
        await sleep(300);
      }
    })();
    const outageFrom = Date.now();
    const terminated = await simulateDatabaseRestart(adminUrl, databaseOf(testDb.env.DATABASE_URL!), { closedMs: OUTAGE_MS });
    const outageTo = Date.now();
    slow.latencyMs = 50;
    await sleep(1_000);
    watching = false;
    await watchHealth;
    expect(terminated, 'connections terminated').toBeGreaterThan(before.length);
    expect(healthFailures, `healthz during the outage (${healthChecks} checks)`).toEqual([]);
    for (const r of before) expect(r.alive, r.tail()).toBe(true);

    // Back: every connector synced again, each process ready again.
    const back = await waitFor(
      async () => {
        const later = (await runs()).filter((r) => r.name.startsWith('fast-') && r.status === 'succeeded' && r.started * 1000 > outageTo);
        const per = groupBy(later, (r) => r.name);
        return per.size === FAST_N && per;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'every fast connector synced after the outage' },
    ).catch(async (err: Error) => {
      const r = await runs().catch(() => []);
      throw new Error(`${err.message}\nruns since: ${JSON.stringify(r.filter((x) => x.started * 1000 > outageFrom - 3000))}\n${tails()}`);
    });
    const firstBack = Math.max(...[...back.values()].map((rs) => Math.min(...rs.map((r) => r.started * 1000))));
    // The sync cut off: synced again after the outage (its retry, or its job's expiry), its run not left running.
    const again = await waitFor(async () => (await runsOf('slow-outage')).find((r) => r.status === 'succeeded' && r.started * 1000 > outageTo), {
      timeoutMs: (STALL_S + 60) * 1000,
      intervalMs: 500,
      what: 'slow-outage synced again after the outage',
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nruns: ${JSON.stringify(await runsOf('slow-outage'))}\n${tails()}`);
    });
    const cutRuns = await runsOf('slow-outage');
    expect(cutRuns[0]).toMatchObject({ id: cut.id });
    expect(['aborted', 'failed'], JSON.stringify(cutRuns)).toContain(cutRuns[0]!.status);
    expect(
      cutRuns.filter((r) => r.status === 'succeeded'),
      JSON.stringify(cutRuns),
    ).toEqual([again]);
    console.log(
      `database restart: ${terminated} connections terminated over ${outageTo - outageFrom} ms; every fast connector synced again within ${Math.round(
        firstBack - outageTo,
      )} ms after; the sync cut off (run ${cutRuns[0]!.status}/${cutRuns[0]!.error_kind}) synced again ${Math.round(again.started * 1000 - outageTo)} ms after, by ${
        again.pid === cut.pid ? 'the same' : 'another'
      } process; runs of slow-outage: ${cutRuns.map((r) => r.status).join(', ')}`,
    );
    await waitFor(async () => (await Promise.all(before.map((r) => r.get('/readyz').then((x) => x.status === 200)))).every(Boolean), {
      timeoutMs: 30_000,
      what: 'every replica ready again',
    });
    // No run left `running` by the outage: each one cut off was marked aborted by its connector's next sync.
    const after = await runs();
    const stuck = after.filter((r) => r.status === 'running' && r.started * 1000 < outageTo);
    expect(stuck).toEqual([]);
    // One catch-up, not one per missed slot: of the slots due while the database was away (nothing
    // could start then), each connector synced at most one (jobs queued before the outage were due by its first second).
    const fastRuns = after.filter((r) => r.name.startsWith('fast-'));
    let missed = 0;
    for (const [name, rs] of groupBy(fastRuns, (r) => r.name)) {
      const offset = rs.find((r) => r.scheduled_for !== null)!.scheduled_for! % SLOT_S;
      for (let t = Math.ceil((outageFrom / 1000 + 1 - offset) / SLOT_S) * SLOT_S + offset; t * 1000 < outageTo; t += SLOT_S) missed++;
      const during = rs.filter((r) => r.scheduled_for !== null && r.scheduled_for * 1000 > outageFrom + 1000 && r.scheduled_for * 1000 < outageTo);
      expect(during.length, `${name}: ${JSON.stringify(during)}`).toBeLessThanOrEqual(1);
      expect(during.every((r) => r.started * 1000 >= outageTo)).toBe(true);
    }
    console.log(
      `database restart: ${missed} slots of the fast connectors fell due while it was away; ${
        fastRuns.filter((r) => r.scheduled_for !== null && r.scheduled_for * 1000 > outageFrom + 1000 && r.scheduled_for * 1000 < outageTo).length
      } of them synced after it (at most one per connector)`,
    );
    for (const r of before) expect(r.alive).toBe(true);
  }, 150_000);

  it('over the whole test: no connector synced twice at once, no slot synced twice, every tenant’s data equal to the fake’s', async () => {
    const stopped = new Set(live().map((r) => r.pid));
    for (const r of live()) {
      const exit = await r.stop({ signal: 'SIGTERM', timeoutMs: GRACE_MS + SLACK_MS });
      expect(exit.code, r.tail()).toBe(0);
    }
    const all = await sql.offlineRows<FleetRun>(FLEET_RUNS_SQL);
    expect(all.filter((r) => r.status === 'running')).toEqual([]);
    for (const [name, rs] of groupBy(all, (r) => r.name)) expect(overlappingRuns(rs), name).toEqual([]);
    expect(doubledSlots(all)).toEqual([]);
    const byStatus = groupBy(all, (r) => `${r.status}${r.error_kind ? `/${r.error_kind}` : ''}`);
    console.log(
      `fleet totals: ${all.length} runs by ${new Set(all.map((r) => r.pid)).size} processes; ${JSON.stringify(Object.fromEntries([...byStatus].map(([k, v]) => [k, v.length])))}`,
    );
    // Each connector's last run succeeded (but for a sync the final SIGTERMs aborted), and its stored users are the tenant's.
    for (const [name, rs] of groupBy(all, (r) => r.name)) {
      const ended = [...rs];
      while (ended.length > 0 && ended[ended.length - 1]!.status === 'aborted' && stopped.has(ended[ended.length - 1]!.pid)) ended.pop();
      expect(ended[ended.length - 1]!.status, `${name}: ${JSON.stringify(rs.slice(-3))}`).toBe('succeeded');
    }
    const stored = await sql.offlineRows<{ name: string; id: number; email: string; last_name: string }>(
      `SELECT c.name, u.tines_user_id::int AS id, u.email, u.last_name FROM tines_users u JOIN connectors c ON c.id = u.connector_id
        WHERE u.removed_at IS NULL ORDER BY c.name, u.tines_user_id`,
    );
    const storedBy = groupBy(stored, (u) => u.name);
    expect([...storedBy.keys()].sort()).toEqual([...keys.keys()].sort());
    for (const [name, key] of keys) {
      const expected = [...fakeOf.get(name)!.usersOf(key).values()]
        .map((u) => ({ name, id: u.id, email: u.email, last_name: u.last_name }))
        .sort((a, b) => a.id - b.id);
      expect(storedBy.get(name), name).toEqual(expected);
    }
  }, 60_000);
});
