// Each kind of change in Tines becomes the right row change and event:
// updated, removed (confirmed by a 404), restored, and membership changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

type Ev = { kind: string; tines_user_id: number; team_id: number | null; details: Record<string, unknown> };

describe.each(backends())('changes (%s)', (backend) => {
  let h: Harness;
  let users: FakeUser[];
  let lastEvent = 0;
  /** Events written since the previous call. */
  async function newEvents(): Promise<Ev[]> {
    const r = await h.rows<Ev & { id: number }>('SELECT id, kind, tines_user_id, team_id, details FROM change_events WHERE id > $1 ORDER BY id', [lastEvent]);
    if (r.length) lastEvent = Number(r[r.length - 1]!.id);
    return r.map(({ id: _id, ...e }) => ({ ...e, tines_user_id: Number(e.tines_user_id), team_id: e.team_id === null ? null : Number(e.team_id) }));
  }
  beforeAll(async () => {
    users = generateUsers(40, { seed: 11 }).map((u) => ({ ...u, is_active: true }));
    h = await createHarness(backend, users);
    expect((await h.sync()).result).toBe('succeeded');
    await newEvents();
  });
  afterAll(() => h?.close());

  it('a changed name and admin flag make one user_updated with from/to details', async () => {
    const u = users[0]!;
    h.fake.updateUser(u.id, { first_name: 'Renamed', admin: !u.admin });
    const o = await h.sync();
    expect(o.counts.usersUpdated).toBe(1);
    expect(await newEvents()).toEqual([
      {
        kind: 'user_updated',
        tines_user_id: u.id,
        team_id: null,
        details: { first_name: { from: u.first_name, to: 'Renamed' }, admin: { from: u.admin, to: !u.admin } },
      },
    ]);
  });

  it('a user gone from Tines is confirmed by GET (404) and removed with its memberships', async () => {
    const u = users.find((x) => x.team_memberships.length > 0)!;
    h.fake.removeUser(u.id);
    const before = h.fake.requests.length;
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
    expect(o.counts.usersRemoved).toBe(1);
    expect(h.fake.requests.slice(before).some((r) => r.path === `/api/v1/admin/users/${u.id}` && r.status === 404)).toBe(true);
    const evs = await newEvents();
    expect(evs.filter((e) => e.kind === 'user_removed').map((e) => e.tines_user_id)).toEqual([u.id]);
    expect(evs.filter((e) => e.kind === 'membership_removed')).toHaveLength(u.team_memberships.length);
    const row = await h.one<{ removed_at: string | null }>('SELECT removed_at FROM tines_users WHERE tines_user_id = $1', [u.id]);
    expect(row.removed_at).not.toBeNull();
    const m = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM team_memberships WHERE tines_user_id = $1 AND removed_at IS NULL', [u.id]);
    expect(m.n).toBe(0);
  });

  it('a removed user who comes back is restored, keeping first_seen_at', async () => {
    const u = users.find((x) => x.team_memberships.length > 0)!;
    const first = await h.one<{ first_seen_at: string }>('SELECT first_seen_at FROM tines_users WHERE tines_user_id = $1', [u.id]);
    h.fake.addUser(u);
    const o = await h.sync();
    expect(o.counts.usersRestored).toBe(1);
    const evs = await newEvents();
    expect(evs.filter((e) => e.kind === 'user_restored').map((e) => e.tines_user_id)).toEqual([u.id]);
    expect(evs.filter((e) => e.kind === 'membership_added')).toHaveLength(u.team_memberships.length);
    const row = await h.one<{ removed_at: string | null; first_seen_at: string }>(
      'SELECT removed_at, first_seen_at FROM tines_users WHERE tines_user_id = $1',
      [u.id],
    );
    expect(row).toEqual({ removed_at: null, first_seen_at: first.first_seen_at });
  });

  it('membership added, role changed and removed each get their event', async () => {
    const u = users[2]!;
    const current = h.fake.users.get(u.id)!;
    const memberships = [{ team_id: 9001, team_name: 'New Team', role: 'EDITOR' }, ...current.team_memberships.slice(1).map((m) => ({ ...m }))];
    if (memberships[1]) memberships[1].role = 'CUSTOM_ROLE';
    h.fake.updateUser(u.id, { team_memberships: memberships });
    const o = await h.sync();
    const evs = await newEvents();
    expect(evs.find((e) => e.kind === 'membership_added')).toMatchObject({
      tines_user_id: u.id,
      team_id: 9001,
      details: { team_name: 'New Team', role: 'EDITOR' },
    });
    if (current.team_memberships[0]) {
      expect(evs.find((e) => e.kind === 'membership_removed')).toMatchObject({ tines_user_id: u.id, team_id: current.team_memberships[0].team_id });
      expect(o.counts.membershipsRemoved).toBe(1);
    }
    if (memberships[1]) {
      expect(evs.find((e) => e.kind === 'membership_updated')).toMatchObject({
        team_id: memberships[1].team_id,
        details: { role: { from: current.team_memberships[1]!.role, to: 'CUSTOM_ROLE' } },
      });
    }
    expect(evs.every((e) => e.kind.startsWith('membership_'))).toBe(true);
  });

  it('an empty team_memberships array removes every membership of that user', async () => {
    const u = users[2]!;
    h.fake.updateUser(u.id, { team_memberships: [] });
    const o = await h.sync();
    const removed = (await newEvents()).filter((e) => e.kind === 'membership_removed');
    expect(removed.length).toBe(o.counts.membershipsRemoved);
    expect(removed.every((e) => e.tines_user_id === u.id)).toBe(true);
    const m = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM team_memberships WHERE tines_user_id = $1 AND removed_at IS NULL', [u.id]);
    expect(m.n).toBe(0);
  });

  it('a tenant that ignores include leaves memberships as they are', async () => {
    const before = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM team_memberships WHERE removed_at IS NULL');
    expect(before.n).toBeGreaterThan(0);
    h.fake.includeMemberships = false;
    try {
      const o = await h.sync();
      expect(o.counts.membershipsRemoved).toBe(0);
      const after = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM team_memberships WHERE removed_at IS NULL');
      expect(after.n).toBe(before.n);
      expect((await newEvents()).filter((e) => e.kind.startsWith('membership_'))).toEqual([]);
    } finally {
      h.fake.includeMemberships = true;
      await h.sync();
      await newEvents();
    }
  });

  it('a missing is_active keeps the stored value, never false', async () => {
    h.fake.omitIsActive = true;
    try {
      const o = await h.sync();
      expect(o.counts.usersUpdated).toBe(0);
      const r = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL AND is_active IS NOT TRUE');
      expect(r.n).toBe(0);
      expect((await newEvents()).filter((e) => e.kind === 'user_updated')).toEqual([]);
    } finally {
      h.fake.omitIsActive = false;
    }
  });

  it('a new user without is_active is stored with is_active null', async () => {
    h.fake.omitIsActive = true;
    try {
      const [fresh] = generateUsers(1, { startId: 50_000, seed: 99 });
      h.fake.addUser(fresh!);
      const o = await h.sync();
      expect(o.counts.usersAdded).toBe(1);
      const r = await h.one<{ is_active: boolean | null }>('SELECT is_active FROM tines_users WHERE tines_user_id = $1', [fresh!.id]);
      expect(r.is_active).toBeNull();
    } finally {
      h.fake.omitIsActive = false;
    }
  });
});
