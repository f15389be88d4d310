// The insights views of 002_insights_views.sql on a hand-seeded tenant: for
// each view, users that must appear (with the right derived columns) and users
// that must not: removed, deactivated, recently seen, inside the org, old events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeMembership, FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

const DAY = 86_400_000;
const NOW = Date.now();
const iso = (t: number) => new Date(Math.floor(t / 1000) * 1000).toISOString();
const daysAgo = (d: number) => iso(NOW - d * DAY);

const SECOPS = { team_id: 1000, team_name: 'Security Operations' };
const DETECT = { team_id: 1001, team_name: 'Detection Engineering' };
const IR = { team_id: 1003, team_name: 'Incident Response' };
const m = (team: { team_id: number; team_name: string }, role: string): FakeMembership => ({ ...team, role });

/** The shape generateUsers() produces, with only what a case cares about overridden. */
function user(id: number, first: string, last: string, over: Partial<FakeUser> = {}): FakeUser {
  const created = NOW - 400 * DAY;
  return {
    id,
    email: `${first}.${last}+${id}@example.com`.toLowerCase(),
    first_name: first,
    last_name: last,
    admin: false,
    is_active: true,
    tenant_permissions: [],
    scim_uid: null,
    created_at: iso(created),
    updated_at: iso(created + 10 * DAY),
    last_seen: daysAgo(1),
    team_memberships: [],
    ...over,
  };
}

// One user per case; ids name them in the assertions below.
const ID = {
  teamAdmin: 1, // VIEWER + EDITOR + TEAM_ADMIN, seen yesterday
  idle120: 2, // EDITOR + VIEWER, last seen 120 days ago
  neverSeen: 3, // custom role + VIEWER, never seen
  deactivatedIdle: 4, // is_active false, 150 days idle, custom role only
  tenantAdmin: 5, // admin, no permissions, no teams
  permissions: 6, // tenant_permissions only
  gmail: 7, // external, plain VIEWER
  subdomain: 8, // sub.example.com: inside the org
  leaver: 9, // removed after the first sync: idle, admin, team admin, external
  noTeams: 10, // no memberships at all
  upperDomain: 11, // EXAMPLE.com: inside the org, whatever the case
  lookalike: 12, // notexample.com: not a subdomain, so external
  noIsActive: 13, // an older tenant's user without is_active, 100 days idle
  renamed: 14, // renamed in the second sync (a user_updated event)
} as const;

function seed(): FakeUser[] {
  const noIsActive = user(ID.noIsActive, 'Olga', 'Novak', { last_seen: daysAgo(100) });
  delete noIsActive.is_active;
  return [
    user(ID.teamAdmin, 'Aoife', 'Murphy', { team_memberships: [m(SECOPS, 'VIEWER'), m(DETECT, 'EDITOR'), m(IR, 'TEAM_ADMIN')] }),
    user(ID.idle120, 'Ben', 'Kelly', { last_seen: daysAgo(120), team_memberships: [m(SECOPS, 'EDITOR'), m(DETECT, 'VIEWER')] }),
    user(ID.neverSeen, 'Chloe', 'Smith', { last_seen: null, team_memberships: [m(SECOPS, 'Automation Reviewer'), m(IR, 'VIEWER')] }),
    user(ID.deactivatedIdle, 'Daniel', 'Garcia', { is_active: false, last_seen: daysAgo(150), team_memberships: [m(DETECT, 'Automation Reviewer')] }),
    user(ID.tenantAdmin, 'Emma', 'Chen', { admin: true }),
    user(ID.permissions, 'Finn', 'Nguyen', { tenant_permissions: ['AUDIT_LOG_READ', 'CREDENTIALS_MANAGE'] }),
    user(ID.gmail, 'Grace', 'Okafor', { email: 'grace.okafor@gmail.com', team_memberships: [m(SECOPS, 'VIEWER')] }),
    user(ID.subdomain, 'Hiro', 'Patel', { email: 'hiro.patel@sub.example.com' }),
    user(ID.leaver, 'Ivan', 'Rossi', {
      email: 'ivan.rossi@outlook.com',
      admin: true,
      tenant_permissions: ['USERS_MANAGE'],
      last_seen: daysAgo(300),
      team_memberships: [m(IR, 'TEAM_ADMIN')],
    }),
    user(ID.noTeams, 'Julia', 'Schmidt'),
    user(ID.upperDomain, 'Kate', 'Tanaka', { email: 'Kate.Tanaka@EXAMPLE.com' }),
    user(ID.lookalike, 'Liam', 'Walsh', { email: 'liam.walsh@notexample.com' }),
    noIsActive,
    user(ID.renamed, 'Maya', 'Byrne', { team_memberships: [m(DETECT, 'EDITOR')] }),
  ];
}

const ENV = { ORG_EMAIL_DOMAINS: 'example.com', INACTIVE_AFTER_DAYS: '90' };

describe.each(backends())('insights views (%s)', (backend) => {
  let h: Harness;
  const ids = async (view: string): Promise<number[]> =>
    (await h.rows<{ id: string | number }>(`SELECT tines_user_id AS id FROM ${view} ORDER BY tines_user_id`)).map((r) => Number(r.id));

  beforeAll(async () => {
    h = await createHarness(backend, seed());
    const first = await h.sync({}, ENV);
    expect(first.result).toBe('succeeded');
    expect(first.counts.usersAdded).toBe(14);
    // Between syncs: one leaver, one rename.
    h.fake.removeUser(ID.leaver);
    h.fake.updateUser(ID.renamed, { last_name: 'Byrne-Walsh' });
    const second = await h.sync({}, ENV);
    expect(second.result).toBe('succeeded');
    expect(second.counts.usersRemoved).toBe(1);
    expect(second.counts.usersUpdated).toBe(1);
  });
  afterAll(() => h?.close());

  it('every view has connector_id, tines_user_id and email', async () => {
    for (const view of ['present_users', 'inactive_users', 'privileged_users', 'external_users', 'recent_changes']) {
      const cols = await h.rows<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_name = $1`, [view]);
      expect(
        cols.map((c) => c.column_name),
        view,
      ).toEqual(expect.arrayContaining(['connector_id', 'tines_user_id', 'email']));
    }
  });

  describe('present_users', () => {
    it('lists every user not removed, and not the leaver', async () => {
      expect(await ids('present_users')).toEqual(
        Object.values(ID)
          .filter((id) => id !== ID.leaver)
          .sort((a, b) => a - b),
      );
      const removed = await h.one<{ removed_at: unknown }>('SELECT removed_at FROM tines_users WHERE tines_user_id = $1', [ID.leaver]);
      expect(removed.removed_at).not.toBeNull(); // still stored, just not present
    });

    it('counts teams and picks the highest role: TEAM_ADMIN > EDITOR > VIEWER > custom', async () => {
      const rows = await h.rows<{ id: string | number; team_count: number; highest_team_role: string | null }>(
        'SELECT tines_user_id AS id, team_count, highest_team_role FROM present_users ORDER BY tines_user_id',
      );
      const by = new Map(rows.map((r) => [Number(r.id), { team_count: r.team_count, highest_team_role: r.highest_team_role }]));
      expect(by.get(ID.teamAdmin)).toEqual({ team_count: 3, highest_team_role: 'TEAM_ADMIN' });
      expect(by.get(ID.idle120)).toEqual({ team_count: 2, highest_team_role: 'EDITOR' });
      expect(by.get(ID.neverSeen)).toEqual({ team_count: 2, highest_team_role: 'VIEWER' });
      expect(by.get(ID.deactivatedIdle)).toEqual({ team_count: 1, highest_team_role: 'Automation Reviewer' });
      expect(by.get(ID.gmail)).toEqual({ team_count: 1, highest_team_role: 'VIEWER' });
      expect(by.get(ID.noTeams)).toEqual({ team_count: 0, highest_team_role: null });
      expect(by.get(ID.tenantAdmin)).toEqual({ team_count: 0, highest_team_role: null });
    });

    it('a removed membership no longer counts', async () => {
      h.fake.updateUser(ID.teamAdmin, { team_memberships: [m(SECOPS, 'VIEWER'), m(DETECT, 'EDITOR')] });
      expect((await h.sync({}, ENV)).result).toBe('succeeded');
      const r = await h.one<{ team_count: number; highest_team_role: string }>(
        'SELECT team_count, highest_team_role FROM present_users WHERE tines_user_id = $1',
        [ID.teamAdmin],
      );
      expect(r).toEqual({ team_count: 2, highest_team_role: 'EDITOR' });
      // Back as it was, for the other views' cases.
      h.fake.updateUser(ID.teamAdmin, { team_memberships: [m(SECOPS, 'VIEWER'), m(DETECT, 'EDITOR'), m(IR, 'TEAM_ADMIN')] });
      expect((await h.sync({}, ENV)).result).toBe('succeeded');
    });
  });

  describe('inactive_users', () => {
    it('holds present, active users idle beyond INACTIVE_AFTER_DAYS or never seen', async () => {
      // In: 120 days idle, never seen, and a user whose tenant omits is_active (not known to be inactive).
      // Out: seen yesterday, deactivated-and-idle, and the removed (idle) leaver.
      expect(await ids('inactive_users')).toEqual([ID.idle120, ID.neverSeen, ID.noIsActive]);
      const rows = await h.rows<{ id: string | number; never_seen: boolean; days_since_last_seen: number | null; inactive_after_days: number }>(
        'SELECT tines_user_id AS id, never_seen, days_since_last_seen, inactive_after_days FROM inactive_users ORDER BY tines_user_id',
      );
      const [idle, never, noIsActive] = rows;
      expect(idle!.never_seen).toBe(false);
      expect(idle!.days_since_last_seen).toBeGreaterThanOrEqual(119);
      expect(idle!.days_since_last_seen).toBeLessThanOrEqual(121);
      expect(idle!.inactive_after_days).toBe(90);
      expect(never!.never_seen).toBe(true);
      expect(never!.days_since_last_seen).toBeNull();
      expect(noIsActive!.days_since_last_seen).toBeGreaterThanOrEqual(99);
      expect(noIsActive!.days_since_last_seen).toBeLessThanOrEqual(101);
    });

    it('follows INACTIVE_AFTER_DAYS as stored on the connector row by a later sync', async () => {
      expect((await h.sync({}, { ...ENV, INACTIVE_AFTER_DAYS: '200' })).result).toBe('succeeded');
      const c = await h.one<{ inactive_after_days: number }>('SELECT inactive_after_days FROM connectors');
      expect(c.inactive_after_days).toBe(200);
      expect(await ids('inactive_users')).toEqual([ID.neverSeen]);

      expect((await h.sync({}, ENV)).result).toBe('succeeded');
      expect(await ids('inactive_users')).toEqual([ID.idle120, ID.neverSeen, ID.noIsActive]);
    });
  });

  describe('privileged_users', () => {
    it('holds tenant admins, users with tenant permissions and team admins, each with its reason', async () => {
      expect(await ids('privileged_users')).toEqual([ID.teamAdmin, ID.tenantAdmin, ID.permissions]);
      const rows = await h.rows<{ id: string | number; reasons: string[]; admin_teams: string[] | null; tenant_permissions: string[] }>(
        'SELECT tines_user_id AS id, reasons, admin_teams, tenant_permissions FROM privileged_users ORDER BY tines_user_id',
      );
      const by = new Map(rows.map((r) => [Number(r.id), r]));
      expect(by.get(ID.tenantAdmin)).toMatchObject({ reasons: ['tenant admin'], admin_teams: null });
      expect(by.get(ID.permissions)!.tenant_permissions).toEqual(['AUDIT_LOG_READ', 'CREDENTIALS_MANAGE']);
      expect(by.get(ID.permissions)!.reasons).toHaveLength(1);
      expect(by.get(ID.permissions)!.reasons[0]).toMatch(/^tenant permissions: .*AUDIT_LOG_READ.*CREDENTIALS_MANAGE/);
      expect(by.get(ID.permissions)!.admin_teams).toBeNull();
      expect(by.get(ID.teamAdmin)!.admin_teams).toEqual(['Incident Response']);
      expect(by.get(ID.teamAdmin)!.reasons).toEqual(['team admin of: Incident Response']);
      // Out: a plain VIEWER (gmail), an EDITOR (idle120), the removed admin and team admin (leaver).
    });
  });

  describe('external_users', () => {
    it('holds present users outside ORG_EMAIL_DOMAINS, subdomains and letter case counting as inside', async () => {
      expect(await ids('external_users')).toEqual([ID.gmail, ID.lookalike]);
      const rows = await h.rows<{ id: string | number; email: string; email_domain: string }>(
        'SELECT tines_user_id AS id, email, email_domain FROM external_users ORDER BY tines_user_id',
      );
      expect(rows.map((r) => ({ email: r.email, email_domain: r.email_domain }))).toEqual([
        { email: 'grace.okafor@gmail.com', email_domain: 'gmail.com' },
        { email: 'liam.walsh@notexample.com', email_domain: 'notexample.com' },
      ]);
    });

    it('is empty while ORG_EMAIL_DOMAINS is unset, and fills again once it is set', async () => {
      expect((await h.sync({}, { ...ENV, ORG_EMAIL_DOMAINS: '' })).result).toBe('succeeded');
      const c = await h.one<{ org_email_domains: string[] | null }>('SELECT org_email_domains FROM connectors');
      expect(c.org_email_domains).toBeNull();
      expect(await ids('external_users')).toEqual([]);

      expect((await h.sync({}, ENV)).result).toBe('succeeded');
      expect(await ids('external_users')).toEqual([ID.gmail, ID.lookalike]);
    });

    it('accepts several org domains', async () => {
      expect((await h.sync({}, { ...ENV, ORG_EMAIL_DOMAINS: 'example.com, gmail.com' })).result).toBe('succeeded');
      expect(await ids('external_users')).toEqual([ID.lookalike]);
      expect((await h.sync({}, ENV)).result).toBe('succeeded');
    });
  });

  describe('recent_changes', () => {
    type Change = {
      id: string | number;
      occurred_at: Date | string;
      kind: string;
      tines_user_id: string | number | null;
      email: string | null;
      first_name: string | null;
      last_name: string | null;
    };
    const recent = () => h.rows<Change>('SELECT id, occurred_at, kind, tines_user_id, email, first_name, last_name FROM recent_changes');
    const time = (t: Date | string) => new Date(t).getTime();

    it('lists events newest first, each with the user’s current name and email', async () => {
      const rows = await recent();
      const all = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM change_events');
      expect(rows.length).toBe(all.n);
      for (let i = 1; i < rows.length; i++) {
        const a = rows[i - 1]!,
          b = rows[i]!;
        expect(time(a.occurred_at) > time(b.occurred_at) || (time(a.occurred_at) === time(b.occurred_at) && Number(a.id) > Number(b.id))).toBe(true);
      }
      const latestRun = await h.one<{ id: string | number }>('SELECT max(sync_run_id) AS id FROM change_events');
      const newest = await h.one<{ id: string | number }>('SELECT id FROM change_events ORDER BY occurred_at DESC, id DESC LIMIT 1');
      expect(Number(rows[0]!.id)).toBe(Number(newest.id));
      expect(Number((await h.one<{ r: string | number }>('SELECT sync_run_id AS r FROM change_events WHERE id = $1', [rows[0]!.id])).r)).toBe(
        Number(latestRun.id),
      );

      const renamed = rows.find((r) => r.kind === 'user_updated' && Number(r.tines_user_id) === ID.renamed)!;
      expect(renamed).toMatchObject({ email: 'maya.byrne+14@example.com', first_name: 'Maya', last_name: 'Byrne-Walsh' });
      const left = rows.find((r) => r.kind === 'user_removed')!;
      expect(left).toMatchObject({ email: 'ivan.rossi@outlook.com', first_name: 'Ivan', last_name: 'Rossi' });
      expect(Number(left.tines_user_id)).toBe(ID.leaver);
      // The leaver's removal is newer than the leaver's arrival.
      const added = rows.find((r) => r.kind === 'user_added' && Number(r.tines_user_id) === ID.leaver)!;
      expect(rows.indexOf(left)).toBeLessThan(rows.indexOf(added));
    });

    it('leaves out events older than 30 days', async () => {
      const ev = await h.one<{ id: string | number }>(`SELECT id FROM change_events WHERE kind = 'user_added' AND tines_user_id = $1`, [ID.gmail]);
      const before = await recent();
      expect(before.some((r) => Number(r.id) === Number(ev.id))).toBe(true);
      await h.db.query(`UPDATE change_events SET occurred_at = now() - interval '40 days' WHERE id = $1`, [ev.id]);
      const after = await recent();
      expect(after.some((r) => Number(r.id) === Number(ev.id))).toBe(false);
      expect(after.length).toBe(before.length - 1);
      // 29 days old is still recent.
      await h.db.query(`UPDATE change_events SET occurred_at = now() - interval '29 days' WHERE id = $1`, [ev.id]);
      const back = await recent();
      expect(back.length).toBe(before.length);
      expect(Number(back[back.length - 1]!.id)).toBe(Number(ev.id)); // now the oldest: last
    });
  });
});
