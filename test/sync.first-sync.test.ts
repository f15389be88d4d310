// The first sync of a tenant: every user and membership lands, each user with
// a user_added event, and the run row tells the story.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('first sync (%s)', (backend) => {
  let h: Harness;
  const users = generateUsers(45, { seed: 7 });
  beforeAll(async () => {
    h = await createHarness(backend, users);
  });
  afterAll(() => h?.close());

  it('stores every user, membership and a user_added event per user', async () => {
    const outcome = await h.sync();
    expect(outcome.result).toBe('succeeded');
    expect(outcome.pagesFetched).toBe(3);
    expect(outcome.counts.usersAdded).toBe(45);
    const memberships = users.reduce((n, u) => n + u.team_memberships.length, 0);
    expect(outcome.counts.membershipsAdded).toBe(memberships);

    const stored = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL');
    expect(stored.n).toBe(45);
    const events = await h.rows<{ kind: string; n: number }>('SELECT kind, count(*)::int AS n FROM change_events GROUP BY kind ORDER BY kind');
    expect(events).toEqual(
      [
        { kind: 'membership_added', n: memberships },
        { kind: 'user_added', n: 45 },
      ].filter((e) => e.n > 0),
    );
    const u = users[3]!;
    const row = await h.one<Record<string, unknown>>('SELECT * FROM tines_users WHERE tines_user_id = $1', [u.id]);
    expect(row).toMatchObject({
      email: u.email,
      first_name: u.first_name,
      last_name: u.last_name,
      admin: u.admin,
      is_active: u.is_active ?? null,
      tenant_permissions: u.tenant_permissions,
      removed_at: null,
    });
    expect(row.raw).toEqual(u);
    const seen = row.last_seen_at === null ? null : new Date(String(row.last_seen_at)).getTime();
    expect(seen).toBe(u.last_seen === null ? null : new Date(u.last_seen).getTime());
  });

  it('records the run with its counts and leaves the connector active', async () => {
    const run = await h.one<Record<string, unknown>>('SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1');
    expect(run).toMatchObject({
      trigger: 'manual',
      status: 'succeeded',
      pages_fetched: 3,
      pages_total: 3,
      users_seen: 45,
      users_added: 45,
      users_removed: 0,
      error_kind: null,
    });
    const c = await h.one<Record<string, unknown>>('SELECT * FROM connectors');
    expect(c).toMatchObject({ name: 'tines', status: 'active', consecutive_failures: 0 });
    expect(String(c.api_key_fingerprint)).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(c.last_success_at).not.toBeNull();
  });
});
