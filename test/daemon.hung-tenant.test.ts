// One `run` process, one tenant that hangs in the middle of its listing and two
// on a seconds schedule: the hung sync holds one slot, never the others'
// schedules (CONTRACT.md, issue 16), on the embedded database too, where every
// sync shares one connection and its temp tables. The hung sync's staged page
// survives the others' syncs meanwhile: released, it completes with every user.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../src/config.js';
import { insertRegistered } from '../src/connectors/registry.js';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, spawnDaemon, sqlReader, waitFor, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const MK = randomBytes(32).toString('hex');
const KEY_HUNG = 'tk_hung_7d1e';
const STEADY = ['tk_steady_a_51c0', 'tk_steady_b_a94f'];
const SLOT_S = 2;
/** Three pages of 20 each: the hung tenant answers page 1, then nothing until released. */
const USERS_EACH = 45;

describe.each(backends())('a hung tenant holds one slot, never the others’ schedules (%s)', (backend) => {
  let fake: FakeTines;
  let hung: FakeTines;
  let testDb: TestDb;
  let daemon: DaemonProcess;
  let sql: SqlReader;
  let release: () => void = () => undefined;
  /** Whether the hung tenant answered its first page (every request after it waits for release). */
  let hooked = false;

  const runsOf = (name: string) =>
    sql.rows<{ status: string; trigger: string; started: number; slot: string | null }>(
      `SELECT r.status, r.trigger, extract(epoch FROM r.started_at)::float8 AS started, r.scheduled_for::text AS slot
         FROM sync_runs r JOIN connectors c ON c.id = r.connector_id WHERE c.name = '${name}' ORDER BY r.id`,
    );

  beforeAll(async () => {
    fake = await FakeTines.start({ apiKey: 'tk_unused_default' });
    STEADY.forEach((key, i) => fake.addTenant(key, generateUsers(USERS_EACH, { seed: 10 + i, startId: 1000 * (i + 1) })));
    hung = await FakeTines.start({ users: generateUsers(USERS_EACH, { seed: 3, startId: 50_000 }), apiKey: KEY_HUNG });
    // After the first answer, every later request waits for release (the fake holds them behind its hook).
    hung.onPage = () => {
      if (hooked) return;
      hooked = true;
      return new Promise<void>((r) => (release = r));
    };
    testDb = await createTestDb(backend);
    const settings = loadSettings({ ...testDb.env, CONNECTOR_SECRETS_KEY: MK });
    const db = await testDb.open();
    try {
      await insertRegistered(db, settings, { name: 'tenant-hung', tenantDomain: new URL(hung.url).host, schedule: null, apiKey: KEY_HUNG });
      for (const [i, key] of STEADY.entries()) {
        await insertRegistered(db, settings, { name: `tenant-steady-${i}`, tenantDomain: new URL(fake.url).host, schedule: null, apiKey: key });
      }
    } finally {
      await db.close();
    }
    const env = daemonEnv(fake, testDb, {
      CONNECTOR_SECRETS_KEY: MK,
      SYNC_SCHEDULE: `*/${SLOT_S} * * * * *`,
      SYNC_SPREAD_SECONDS: '1',
      SYNC_CONCURRENCY: '4',
      TINES_TIMEOUT_MS: '120000',
    });
    delete env.TINES_TENANT_DOMAIN; // registered connectors only
    daemon = await spawnDaemon(env, { label: `hung-${backend}` });
    sql = sqlReader(testDb, daemon.env);
  }, 60_000);

  afterAll(async () => {
    release();
    await killAllDaemons();
    await hung?.close();
    await fake?.close();
    await testDb?.dispose();
  });

  it('the other tenants keep syncing on schedule while one sync hangs, and the hung sync completes once answered', async () => {
    // The hung tenant's first sync: page 1 answered and staged, page 2 asked for and not answered.
    await waitFor(() => hooked, { timeoutMs: 30_000, intervalMs: 100, what: 'the hung tenant answered its first page' }).catch((err: Error) => {
      throw new Error(`${err.message}\n${daemon.tail(30)}`);
    });
    const hungSince = Date.now() / 1000;
    // Meanwhile each steady tenant syncs on its schedule: three more slots each, every run succeeding.
    for (const [i] of STEADY.entries()) {
      await waitFor(async () => (await runsOf(`tenant-steady-${i}`)).filter((r) => r.status === 'succeeded' && r.started >= hungSince).length >= 3, {
        timeoutMs: 8 * SLOT_S * 1000,
        intervalMs: 200,
        what: `three scheduled syncs of tenant-steady-${i} during the hang`,
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${daemon.tail(30)}`);
      });
    }
    for (const [i] of STEADY.entries()) {
      const runs = (await runsOf(`tenant-steady-${i}`)).filter((r) => r.started >= hungSince);
      expect(
        runs.every((r) => r.status === 'succeeded' || r.status === 'running'),
        JSON.stringify(runs),
      ).toBe(true);
      // One run per slot (each scheduled run records the slot it was due at; under load a late one may start in the next slot's seconds).
      const slots = runs.filter((r) => r.trigger === 'schedule').map((r) => r.slot);
      expect(slots.every((s) => s !== null)).toBe(true);
      expect(new Set(slots).size).toBe(slots.length);
    }
    const hungRuns = await runsOf('tenant-hung');
    expect(hungRuns.map((r) => r.status)).toEqual(['running']);

    // Answered at last: the hung sync finishes with every user, its staged page intact.
    release();
    const first = await waitFor(
      async () => {
        const r = (await runsOf('tenant-hung'))[0]!;
        return r.status !== 'running' && r;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the released sync to end' },
    );
    expect(first.status, daemon.tail(30)).toBe('succeeded');
    for (const [i] of STEADY.entries()) {
      const runs = await runsOf(`tenant-steady-${i}`);
      expect(
        runs.every((r) => r.status === 'succeeded' || r.status === 'running'),
        JSON.stringify(runs),
      ).toBe(true);
    }
    const counts = await sql.rows<{ name: string; n: number }>(
      `SELECT c.name, count(u.*) FILTER (WHERE u.removed_at IS NULL)::int AS n
         FROM connectors c LEFT JOIN tines_users u ON u.connector_id = c.id GROUP BY c.name ORDER BY c.name`,
    );
    expect(counts).toEqual([
      { name: 'tenant-hung', n: USERS_EACH },
      { name: 'tenant-steady-0', n: USERS_EACH },
      { name: 'tenant-steady-1', n: USERS_EACH },
    ]);
    const stopped = await daemon.stop();
    expect(stopped.code).toBe(0);
  }, 90_000);
});
