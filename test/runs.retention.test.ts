// RUNS_RETENTION_DAYS: old runs go, each connector's latest stays (however old),
// running runs and change_events stay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneRuns } from '../src/db/run-retention.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('sync_runs retention (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(3));
  });
  afterAll(() => h?.close());

  it('deletes runs older than the window except each connector latest; events stay', async () => {
    const [a, b] = (
      await h.rows<{ id: number }>(`INSERT INTO connectors (name, tenant_domain) VALUES ('a', 'a.tines.com'), ('b', 'b.tines.com') RETURNING id`)
    ).map((r) => r.id);
    const run = async (c: number, daysAgo: number, status = 'succeeded') =>
      (
        await h.one<{ id: number }>(
          `INSERT INTO sync_runs (connector_id, trigger, status, started_at, finished_at)
           VALUES ($1, 'schedule', $2, now() - make_interval(days => $3::int), CASE WHEN $2 = 'running' THEN NULL ELSE now() - make_interval(days => $3::int) END)
           RETURNING id`,
          [c, status, daysAgo],
        )
      ).id;
    const aOld = [await run(a!, 200), await run(a!, 120), await run(a!, 91)];
    const aNew = [await run(a!, 100, 'running'), await run(a!, 30), await run(a!, 1)];
    // b has synced nothing for long: its latest stays however old.
    const bOld = await run(b!, 300);
    const bLatest = await run(b!, 150);
    await h.db.query(`INSERT INTO change_events (connector_id, sync_run_id, kind) VALUES ($1, $2, 'user_added')`, [a, aOld[0]]);

    expect(await pruneRuns(h.db, 90)).toBe(4);
    const left = (await h.rows<{ id: number }>(`SELECT id FROM sync_runs WHERE connector_id IN ($1, $2) ORDER BY id`, [a, b])).map((r) => r.id);
    expect(left).toEqual([...aNew, bLatest].sort((x, y) => x - y));
    expect(left).not.toContain(bOld);
    expect((await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM change_events WHERE sync_run_id = $1`, [aOld[0]])).n).toBe(1);
    expect(await pruneRuns(h.db, 90)).toBe(0);
    expect(await pruneRuns(h.db, 10)).toBe(1); // a's 30-day-old run; the running one, a's 1-day-old and b's latest stay
  });
});
