// Users a connector's first sync finds are its baseline, not joiners: their
// user_added (and membership_added) events say "baseline": true, the
// connector records the baseline, present_users marks them, and later
// arrivals are joiners. On both write paths (the server's first load, and
// staging on the embedded database).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('the baseline (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(30, { seed: 12 }));
  });
  afterAll(() => h?.close());

  it("the first sync's arrivals are the baseline; first_seen_at is when the connector first saw them", async () => {
    const o = await h.sync();
    expect(o.counts.usersAdded).toBe(30);
    const events = await h.rows<{ kind: string; baseline: boolean; n: number }>(
      `SELECT kind, details @> '{"baseline": true}' AS baseline, count(*)::int AS n FROM change_events GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(events.every((e) => e.baseline)).toBe(true);
    expect(events.find((e) => e.kind === 'user_added')?.n).toBe(30);
    const c = await h.one<{ baseline_run_id: number; baseline_users: number; same: boolean }>(
      `SELECT c.baseline_run_id, c.baseline_users,
              (SELECT bool_and(u.first_seen_at = c.baseline_at) FROM tines_users u WHERE u.connector_id = c.id) AS same
         FROM connectors c`,
    );
    expect(c).toEqual({ baseline_run_id: o.runId, baseline_users: 30, same: true });
    expect(await h.one('SELECT count(*)::int AS n FROM present_users WHERE baseline')).toEqual({ n: 30 });
    expect(await h.one('SELECT count(*)::int AS n FROM recent_changes WHERE NOT baseline')).toEqual({ n: 0 });
  });

  it('users added by later syncs are joiners: no baseline mark, and the baseline stays', async () => {
    const [joiner] = generateUsers(1, { startId: 9_000, seed: 13 });
    h.fake.addUser(joiner!);
    const o = await h.sync();
    expect(o.counts.usersAdded).toBe(1);
    const added = await h.rows<{ tines_user_id: number; details: Record<string, unknown> }>(
      `SELECT tines_user_id, details FROM change_events WHERE kind = 'user_added' AND sync_run_id = $1`,
      [o.runId],
    );
    expect(added).toEqual([{ tines_user_id: joiner!.id, details: {} }]);
    expect(await h.rows('SELECT tines_user_id, baseline FROM present_users WHERE NOT baseline')).toEqual([{ tines_user_id: joiner!.id, baseline: false }]);
    expect(await h.one('SELECT baseline_users FROM connectors')).toEqual({ baseline_users: 30 });
    const recent = await h.rows<{ kind: string }>(`SELECT kind FROM recent_changes WHERE kind = 'user_added' AND NOT baseline`);
    expect(recent).toEqual([{ kind: 'user_added' }]);
  });
});
