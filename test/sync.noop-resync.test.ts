// A resync with no change in Tines writes no row; last_seen moving updates the
// user's row but makes no event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

/** Every row's xmin: a row rewritten by a later statement gets a new one. */
async function xmins(h: Harness): Promise<string> {
  const r = await h.rows<{ t: string; x: string }>(
    `SELECT 'u' AS t, string_agg(xmin::text, ',' ORDER BY tines_user_id) AS x FROM tines_users
     UNION ALL SELECT 'm', string_agg(xmin::text, ',' ORDER BY tines_user_id, team_id) FROM team_memberships
     UNION ALL SELECT 'e', count(*)::text FROM change_events`,
  );
  return JSON.stringify(r);
}

describe.each(backends())('no-change resync (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(60, { seed: 3 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(() => h?.close());

  it('rewrites no row of tines_users, team_memberships or change_events', async () => {
    const before = await xmins(h);
    const outcome = await h.sync();
    expect(outcome.result).toBe('succeeded');
    expect(outcome.counts).toMatchObject({
      usersAdded: 0,
      usersUpdated: 0,
      usersRemoved: 0,
      membershipsAdded: 0,
      membershipsUpdated: 0,
      membershipsRemoved: 0,
    });
    expect(await xmins(h)).toBe(before);
  });

  it('rewrites no row when Tines sends the same users with their keys in another order', async () => {
    h.fake.setUsers([...h.fake.users.values()].map((u) => Object.fromEntries(Object.entries(u).reverse()) as unknown as FakeUser));
    const before = await xmins(h);
    const outcome = await h.sync();
    expect(outcome.result).toBe('succeeded');
    expect(outcome.counts).toMatchObject({
      usersAdded: 0,
      usersUpdated: 0,
      usersRemoved: 0,
      membershipsAdded: 0,
      membershipsUpdated: 0,
      membershipsRemoved: 0,
    });
    expect(await xmins(h)).toBe(before);
  });

  it('rewrites no row and makes no event when team_memberships or tenant_permissions come in another order', async () => {
    const reordered = [...h.fake.users.values()].filter((u) => u.team_memberships.length > 1 || u.tenant_permissions.length > 1);
    expect(reordered.length).toBeGreaterThan(0);
    for (const u of reordered) {
      h.fake.updateUser(u.id, { team_memberships: [...u.team_memberships].reverse(), tenant_permissions: [...u.tenant_permissions].reverse() });
    }
    const before = await xmins(h);
    const outcome = await h.sync();
    expect(outcome.counts).toMatchObject({ usersUpdated: 0, membershipsAdded: 0, membershipsUpdated: 0, membershipsRemoved: 0 });
    expect(await xmins(h)).toBe(before);
    // A real change to one of them afterwards is still seen, and stores what Tines sent last.
    const u = h.fake.users.get(reordered[0]!.id)!;
    h.fake.updateUser(u.id, { first_name: `${u.first_name}-renamed` });
    const changed = await h.sync();
    expect(changed.counts.usersUpdated).toBe(1);
    const row = await h.one<{ first_name: string; raw: unknown }>('SELECT first_name, raw FROM tines_users WHERE tines_user_id = $1', [u.id]);
    expect(row.first_name).toBe(`${u.first_name}-renamed`);
    expect(row.raw).toEqual(h.fake.users.get(u.id));
  });

  it('updates the row when only last_seen moves, without a user_updated event', async () => {
    const id = [...h.fake.users.keys()][5]!;
    const events = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM change_events');
    const seen = '2026-11-28T10:00:00.000Z';
    h.fake.updateUser(id, { last_seen: seen });
    const outcome = await h.sync();
    expect(outcome.counts.usersUpdated).toBe(0);
    const row = await h.one<{ last_seen_at: string }>('SELECT last_seen_at FROM tines_users WHERE tines_user_id = $1', [id]);
    expect(new Date(row.last_seen_at).toISOString()).toBe(seen);
    expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM change_events')).n).toBe(events.n);
  });
});
