// One `run` process, the environment's connector and 50 registered ones on a
// seconds schedule, against one fake serving 51 tenants told apart by key:
// every connector synced on each slot, none twice at once, at most
// SYNC_CONCURRENCY syncs together, starts spread over SYNC_SPREAD_SECONDS, and
// 50 rate limiters that do not wait on each other.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../src/config.js';
import { insertRegistered } from '../src/connectors/registry.js';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, overlappingRuns, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type RunInterval } from './helpers/daemon.js';
import { groupBy } from './helpers/fleet.js';

const N = 50;
const SPREAD_S = 8;
const CONCURRENCY = 8;
/**
 * The server runs CONCURRENCY syncs at once, each of 3 pages 500 ms apart (its own
 * limiter at 120 a minute); the embedded database runs its statements one at a time
 * (one connection), so there each tenant is one page and the slots are longer.
 */
const PLAN = {
  postgres: { slotS: 15, rpm: 120, usersEach: 45 },
  embedded: { slotS: 20, rpm: 100_000, usersEach: 20 },
} as const;
const MK = randomBytes(32).toString('hex');
const ENV_KEY = 'tk_many_env_0c1d';
const keyOf = (i: number) => `tk_many_${i}_${randomBytes(4).toString('hex')}`;

describe.each(backends())('one daemon, 50 registered connectors (%s)', (backend) => {
  const { slotS: SLOT_S, rpm: RPM, usersEach: USERS_EACH } = PLAN[backend];
  const concurrency = CONCURRENCY;
  let fake: FakeTines;
  let testDb: TestDb;
  let daemon: DaemonProcess;
  const keys: string[] = [];
  let runs: (RunInterval & { name: string })[] = [];

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS_EACH, { seed: 1 }), apiKey: ENV_KEY });
    testDb = await createTestDb(backend);
    for (let i = 0; i < N; i++) {
      keys.push(keyOf(i));
      fake.addTenant(keys[i]!, generateUsers(USERS_EACH, { seed: 100 + i, startId: 10_000 * (i + 1) }));
    }
    const settings = loadSettings({ ...testDb.env, CONNECTOR_SECRETS_KEY: MK });
    const db = await testDb.open();
    try {
      for (let i = 0; i < N; i++) {
        await insertRegistered(db, settings, {
          name: `tenant-${String(i).padStart(2, '0')}`,
          tenantDomain: new URL(fake.url).host,
          schedule: null,
          apiKey: keys[i]!,
        });
      }
    } finally {
      await db.close();
    }
    daemon = await spawnDaemon(
      daemonEnv(fake, testDb, {
        TINES_API_KEY: ENV_KEY,
        CONNECTOR_SECRETS_KEY: MK,
        SYNC_SCHEDULE: `*/${SLOT_S} * * * * *`,
        SYNC_SPREAD_SECONDS: String(SPREAD_S),
        SYNC_CONCURRENCY: String(CONCURRENCY),
        TINES_REQUESTS_PER_MINUTE: String(RPM),
        SYNC_ON_START: 'false',
      }),
      { label: `many-${backend}` },
    );
    const sql = sqlReader(testDb, daemon.env);
    // Two slots of every connector, each synced.
    const progress = async () =>
      JSON.stringify(
        await sql
          .rows(`SELECT r.status, r.trigger, r.error_kind, count(*)::int AS n, min(r.error_message) AS message FROM sync_runs r GROUP BY 1, 2, 3`)
          .catch((err: Error) => err.message),
      );
    await waitFor(
      async () => {
        const r = await sql.rows<{ n: number; least: number }>(
          `SELECT count(*)::int AS n, min(k)::int AS least FROM (
             SELECT c.id, count(r.id) FILTER (WHERE r.status = 'succeeded' AND r.trigger = 'schedule') AS k
               FROM connectors c LEFT JOIN sync_runs r ON r.connector_id = c.id GROUP BY c.id) x`,
        );
        return r[0]!.n === N + 1 && r[0]!.least >= 2;
      },
      { timeoutMs: 6 * SLOT_S * 1000, intervalMs: 1000, what: 'two scheduled syncs of every connector' },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nruns: ${await progress()}\n${daemon.tail(40)}`);
    });
    const metrics = await daemon.get('/metrics');
    expect(metrics.body).toMatch(new RegExp(`^tines_connector_users_present\\{connector="tenant-07"\\} ${USERS_EACH}$`, 'm'));
    expect(metrics.body).toMatch(new RegExp(`^tines_connector_users_present\\{connector="tines"\\} ${USERS_EACH}$`, 'm'));
    const stopped = await daemon.stop();
    expect(stopped.code).toBe(0);
    runs = await sql.offlineRows<RunInterval & { name: string }>(
      `SELECT r.id::int AS id, c.name, r.status, r.trigger, r.error_kind,
              extract(epoch FROM r.started_at)::float8 AS started, extract(epoch FROM r.finished_at)::float8 AS finished
         FROM sync_runs r JOIN connectors c ON c.id = r.connector_id ORDER BY r.id`,
    );
  }, 180_000);

  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  it('every connector is synced on each slot of its schedule, every sync succeeds', () => {
    const byName = groupBy(runs, (r) => r.name);
    expect(byName.size).toBe(N + 1);
    for (const [name, rs] of byName) {
      expect(
        rs.every((r) => r.status === 'succeeded' && r.trigger === 'schedule'),
        `${name}: ${JSON.stringify(rs)}`,
      ).toBe(true);
      // One run per slot, in consecutive slots.
      const slots = rs.map((r) => Math.floor(r.started / SLOT_S));
      expect(new Set(slots).size, name).toBe(slots.length);
      for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!, name).toBe(1);
    }
  });

  it('no connector syncs twice at once; at most SYNC_CONCURRENCY syncs run together', () => {
    for (const [name, rs] of groupBy(runs, (r) => r.name)) expect(overlappingRuns(rs), name).toEqual([]);
    let most = 0;
    for (const r of runs) most = Math.max(most, runs.filter((o) => o.started <= r.started && (o.finished ?? Infinity) > r.started).length);
    expect(most).toBeLessThanOrEqual(concurrency);
    if (concurrency > 1) expect(most).toBeGreaterThan(1);
  });

  it('connectors sharing the schedule start spread over SYNC_SPREAD_SECONDS', () => {
    // Each registered connector's first run: how long after its slot it started.
    const offsets = [
      ...groupBy(
        runs.filter((r) => r.name !== 'tines'),
        (r) => r.name,
      ).values(),
    ].map((rs) => rs[0]!.started % SLOT_S);
    expect(Math.max(...offsets) - Math.min(...offsets)).toBeGreaterThan(SPREAD_S / 2);
  });

  it('50 rate limiters: each spaces its own requests, none waits for the others (the server; on the embedded database each tenant is one page)', () => {
    const byKey = groupBy(
      fake.requests.filter((q) => q.status === 200),
      (q) => q.auth ?? '',
    );
    expect(byKey.size).toBe(N + 1);
    for (const qs of byKey.values()) expect(qs.length).toBeGreaterThanOrEqual(2);
    if (backend === 'embedded') return; // one page a tenant: nothing to space
    const spacing = 60_000 / RPM;
    for (const [auth, qs] of byKey) {
      // Within one sync (pages 1, 2, 3) the limiter spaces the starts; measured at the fake, across
      // the whole sync, so one late arrival under a loaded machine does not count twice.
      const syncs: (typeof qs)[] = [];
      for (const q of qs) {
        if (q.query.page === '1' || syncs.length === 0) syncs.push([q]);
        else syncs[syncs.length - 1]!.push(q);
      }
      for (const pages of syncs.filter((p) => p.length === 3)) {
        expect(pages[2]!.at - pages[0]!.at, auth.slice(0, 20)).toBeGreaterThanOrEqual(2 * spacing - 200);
      }
    }
    // One shared limiter would let 2 requests a second through; here one second holds many tenants' requests.
    const all = fake.requests
      .filter((q) => q.status === 200)
      .map((q) => q.at)
      .sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0, j = 0; i < all.length; i++) {
      while (all[i]! - all[j]! >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeGreaterThanOrEqual(CONCURRENCY);
    for (const k of [...keys, ENV_KEY]) expect(daemon.output).not.toContain(k);
  });
});
