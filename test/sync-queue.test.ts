// The fleet's queue on the real PostgreSQL: a slot queued by every process is
// one job; a handed-back job comes round again; a job left active by a dead
// process is put back after its expiry; inserts that fail keep each
// connector's latest job; installing the queue from many processes at once is safe.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { previousSlot } from '../src/daemon/spread.js';
import { migrate } from '../src/db/migrate.js';
import { PostgresDatabase } from '../src/db/postgres.js';
import { JobInserter } from '../src/fleet/job-inserter.js';
import { jobIdOf, SyncQueue, type NewJob } from '../src/fleet/sync-queue.js';
import { createLogger } from '../src/log.js';
import { createTestDb, type TestDb } from './helpers/backends.js';
import { sleep, waitFor } from './helpers/daemon.js';

const log = createLogger('silent');

function job(connectorId: number, slot: string, startAfter = new Date(Date.now() - 1000)): NewJob {
  return { key: `${connectorId}@${slot}`, startAfter, data: { connectorId, trigger: 'schedule', scheduledFor: slot, since: slot, attempt: 0 } };
}

describe('the sync queue (postgres)', () => {
  let t: TestDb;
  let url: string;
  let queue: SyncQueue;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    url = t.env.DATABASE_URL!;
    // Three processes migrating at once: pg-boss's schema and the queue are installed once, without a deadlock.
    const dbs = [0, 1, 2].map(() => new PostgresDatabase(url, log));
    await Promise.all(dbs.map((db) => migrate(db, log, { queueUrl: url })));
    await Promise.all(dbs.map((db) => db.close()));
    // The shortest stall the configuration allows: expiry after 10 s.
    queue = new SyncQueue(url, 30, log);
    await queue.start();
  });
  afterAll(async () => {
    await queue?.stop();
    await t?.dispose();
  });

  it('derives the same job id from the same key, as a uuid', () => {
    expect(jobIdOf('7@2026-12-01T03:00:00.000Z')).toBe(jobIdOf('7@2026-12-01T03:00:00.000Z'));
    expect(jobIdOf('7@2026-12-01T03:00:00.000Z')).not.toBe(jobIdOf('8@2026-12-01T03:00:00.000Z'));
    expect(jobIdOf('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('holds one job for a slot however many processes queue it, and hands it out once', async () => {
    const slot = '2026-12-01T03:00:00.000Z';
    await Promise.all([queue.insert([job(1, slot)]), queue.insert([job(1, slot)]), queue.insert([job(1, slot), job(2, slot)])]);
    expect(await queue.dueDepth()).toBe(2);
    const taken = [...(await queue.fetch(1)), ...(await queue.fetch(1)), ...(await queue.fetch(1))];
    expect(taken.map((j) => j.data.connectorId).sort()).toEqual([1, 2]);
    expect(await queue.dueDepth()).toBe(0);
    await Promise.all(taken.map((j) => queue.complete(j.id)));
    // Queued again after it ran (a late process): still the same job, not a second one.
    await queue.insert([job(1, slot)]);
    expect(await queue.fetch(1)).toEqual([]);
  });

  it('does not hand out a job before its start time', async () => {
    await queue.insert([job(3, '2026-12-01T03:15:00.000Z', new Date(Date.now() + 60_000))]);
    expect(await queue.fetch(1)).toEqual([]);
    expect(await queue.dueDepth()).toBe(0);
  });

  it('a job handed back comes round again a few seconds later, with its data', async () => {
    await queue.insert([job(4, '2026-12-01T03:30:00.000Z')]);
    const [first] = await queue.fetch(1);
    expect(first?.data).toMatchObject({ connectorId: 4, scheduledFor: '2026-12-01T03:30:00.000Z' });
    await queue.handBack(first!.id, 'a sync of this connector is running');
    expect(await queue.fetch(1)).toEqual([]);
    const again = await waitFor(async () => (await queue.fetch(1))[0], { timeoutMs: 20_000, intervalMs: 250, what: 'the handed-back job' });
    expect(again.id).toBe(first!.id);
    expect(again.data).toEqual(first!.data);
    await queue.complete(again.id);
  });

  it("a job left active by a process that died is put back after its expiry (pg-boss's maintenance)", async () => {
    await queue.insert([job(5, '2026-12-01T03:45:00.000Z')]);
    const [taken] = await queue.fetch(1);
    expect(taken).toBeDefined();
    // Its process is gone: nobody completes it. Another process gets it once it expired.
    const started = Date.now();
    const back = await waitFor(async () => (await queue.fetch(1))[0], { timeoutMs: 90_000, intervalMs: 500, what: 'the expired job' });
    expect(back.id).toBe(taken!.id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    await queue.complete(back.id);
  }, 120_000);

  it('inserts that fail keep each connector latest job, and go through once the database answers', async () => {
    const inserted: NewJob[][] = [];
    let failing = true;
    const inserter = new JobInserter(
      {
        insert: async (jobs) => {
          if (failing) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
          inserted.push([...jobs]);
        },
      },
      log,
    );
    const at = (m: number) => new Date(Date.UTC(2026, 11, 1, 4, m));
    inserter.add(job(6, '04:00', at(0)));
    inserter.add(job(7, '04:00', at(0)));
    await sleep(200);
    expect(inserted).toEqual([]);
    // Slots come and go while the database is away: one job per connector waits, the latest.
    inserter.add(job(6, '04:15', at(15)));
    inserter.add(job(6, '04:30', at(30)));
    expect(inserter.waiting).toBe(2);
    failing = false;
    await waitFor(async () => inserted.length > 0 || undefined, { timeoutMs: 15_000, what: 'the retried insert' });
    expect(inserted).toHaveLength(1);
    expect(inserted[0]!.map((j) => j.key).sort()).toEqual(['6@04:30', '7@04:00']);
    expect(inserter.waiting).toBe(0);
    await inserter.stop();
  });

  it('the start job of a process joining a running fleet covers the last slot: previousSlot, quickly, for any schedule', () => {
    const now = new Date('2026-12-01T03:07:31.500Z');
    expect(previousSlot('*/15 * * * *', 'UTC', now)?.toISOString()).toBe('2026-12-01T03:00:00.000Z');
    expect(previousSlot('*/2 * * * * *', 'UTC', now)?.toISOString()).toBe('2026-12-01T03:07:30.000Z');
    expect(previousSlot('0 9 * * 1-5', 'UTC', now)?.toISOString()).toBe('2026-11-30T09:00:00.000Z');
    expect(previousSlot('0 9 * * *', 'Europe/Berlin', now)?.toISOString()).toBe('2026-11-30T08:00:00.000Z');
    expect(previousSlot('30 0 0 * * 1', 'UTC', now)?.toISOString()).toBe('2026-11-30T00:00:30.000Z');
    // Further back than the search goes: unknown, not a guess (the caller falls back to a month).
    expect(previousSlot('0 0 1 1 *', 'UTC', now)).toBeNull();
    expect(previousSlot('0 0 0 1 1 *', 'UTC', now)).toBeNull();
  });
});
