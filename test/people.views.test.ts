// The owner views of 009_people.sql on both backends, on a synced tenant and a
// second connector: for each view, the accounts that must appear (with the
// right derived columns) and those that must not.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeUser } from '../src/fake/tines-server.js';
import { createLogger } from '../src/log.js';
import { importPeople } from '../src/people/import.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

const TEAM = { team_id: 1000, team_name: 'Security Operations' };

function user(id: number, email: string, over: Partial<FakeUser> = {}): FakeUser {
  return {
    id,
    email,
    first_name: email.split(/[@+]/)[0]!,
    last_name: 'Test',
    admin: false,
    is_active: true,
    tenant_permissions: [],
    scim_uid: null,
    created_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-02T00:00:00Z',
    last_seen: '2026-11-01T00:00:00Z',
    team_memberships: [],
    ...over,
  };
}

// One account per case; ids name them in the assertions below.
const ID = {
  owned: 1, // person active
  departed: 2, // person departed 40 days ago; stored with other case and blanks
  tenantAdmin: 3, // admin, person departed
  permissions: 4, // tenant permissions, person suspended
  teamAdmin: 5, // TEAM_ADMIN of a team, person departed
  deactivated: 6, // is_active false, person departed: not orphaned
  aliased: 7, // gus+tines@: an alias to gus@, departed
  nobody: 8, // no person: unowned
  outsider: 9, // gmail.com, no person: external, not unowned
  removed: 10, // removed from Tines, person departed: in no view
  viewer: 11, // VIEWER only, person departed: orphaned, not privileged
  plusNoAlias: 12, // hal+x@ with no alias, person hal@ exists: unowned (plus-addressing is not matched)
} as const;

function tenant(): FakeUser[] {
  return [
    user(ID.owned, 'ada@example.com'),
    user(ID.departed, ' Bob@Example.COM'),
    user(ID.tenantAdmin, 'carol@example.com', { admin: true }),
    user(ID.permissions, 'dan@example.com', { tenant_permissions: ['AUDIT_LOG_READ'] }),
    user(ID.teamAdmin, 'eve@example.com', { team_memberships: [{ ...TEAM, role: 'TEAM_ADMIN' }] }),
    user(ID.deactivated, 'fay@example.com', { is_active: false, admin: true }),
    user(ID.aliased, 'gus+tines@example.com'),
    user(ID.nobody, 'nobody@example.com'),
    user(ID.outsider, 'ivy@gmail.com'),
    user(ID.removed, 'jon@example.com', { admin: true }),
    user(ID.viewer, 'kim@example.com', { team_memberships: [{ ...TEAM, role: 'VIEWER' }] }),
    user(ID.plusNoAlias, 'hal+x@example.com'),
  ];
}

const DIRECTORY = `email,name,status,department
ada@example.com,Ada,active,Eng
bob@example.com,Bob,departed,Sales
carol@example.com,Carol,departed,IT
dan@example.com,Dan,suspended,Finance
eve@example.com,Eve,departed,SecOps
fay@example.com,Fay,departed,Eng
gus@example.com,Gus,departed,Eng
jon@example.com,Jon,departed,Eng
kim@example.com,Kim,departed,Eng
hal@example.com,Hal,active,Eng
`;

describe.each(backends())('owner views (%s)', (backend) => {
  let h: Harness;
  let other: number;
  const ids = async (sql: string) =>
    (await h.rows<{ connector_id: number; tines_user_id: number }>(sql))
      .map((r) => (r.connector_id === other ? -r.tines_user_id : r.tines_user_id))
      .sort((a, b) => a - b);

  beforeAll(async () => {
    h = await createHarness(backend, tenant());
    const env = { ORG_EMAIL_DOMAINS: 'example.com', REMOVAL_GUARD_MIN: '100' };
    expect((await h.sync({}, env)).result).toBe('succeeded');
    h.fake.removeUser(ID.removed);
    expect((await h.sync({}, env)).result).toBe('succeeded');
    const loaded = await importPeople(h.db, Readable.from([DIRECTORY]), {
      source: 'hr',
      allowMassDeparture: false,
      guard: h.config().sync,
      log: createLogger('silent'),
    });
    expect(loaded).toMatchObject({ result: 'loaded', added: 10 });
    await h.db.query(`UPDATE people SET status_changed_at = now() - interval '40 days 1 hour' WHERE email_key = 'bob@example.com'`);
    await h.db.query(
      `INSERT INTO email_aliases (alias_email, person_email, note) VALUES ('GUS+tines@example.com', 'gus@example.com', 'plus-addressed Tines login')`,
    );
    // A second connector (no ORG_EMAIL_DOMAINS) whose accounts are owned by the same directory.
    other = (await h.one<{ id: number }>(`INSERT INTO connectors (name, tenant_domain) VALUES ('beta', 'beta.tines.com') RETURNING id`)).id;
    await h.db.query(
      `INSERT INTO tines_users (connector_id, tines_user_id, email, admin, is_active, raw)
       VALUES ($1, 1, 'ada@example.com', false, true, '{}'), ($1, 2, 'bob@example.com', true, true, '{}'), ($1, 3, 'zed@elsewhere.org', false, true, '{}')`,
      [other],
    );
  });
  afterAll(() => h?.close());

  it('account_owners: every present account with its person or none, matched by normalised email or an alias', async () => {
    const rows = await h.rows<{
      connector_id: number;
      tines_user_id: number;
      email: string;
      person_email: string | null;
      person_status: string | null;
      matched_by: string | null;
      department: string | null;
    }>('SELECT connector_id, tines_user_id, email, person_email, person_status, matched_by, department FROM account_owners');
    const byId = new Map(rows.map((r) => [r.connector_id === other ? -r.tines_user_id : r.tines_user_id, r]));
    expect([...byId.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]);
    expect(byId.get(ID.owned)).toMatchObject({ person_email: 'ada@example.com', person_status: 'active', matched_by: 'email', department: 'Eng' });
    expect(byId.get(ID.departed)).toMatchObject({ email: ' Bob@Example.COM', person_email: 'bob@example.com', person_status: 'departed' });
    expect(byId.get(ID.aliased)).toMatchObject({ person_email: 'gus@example.com', matched_by: 'alias' });
    expect(byId.get(ID.nobody)).toMatchObject({ person_email: null, matched_by: null });
    expect(byId.get(ID.plusNoAlias)).toMatchObject({ person_email: null });
    expect(byId.get(-1)).toMatchObject({ person_email: 'ada@example.com' });
  });

  it('orphaned_accounts: present, not deactivated accounts whose person is suspended or departed, with days since', async () => {
    expect(await ids('SELECT connector_id, tines_user_id FROM orphaned_accounts')).toEqual([-2, 2, 3, 4, 5, 7, 11]);
    const bob = await h.one<{ days_since_departure: number; person_status: string; person_name: string }>(
      `SELECT days_since_departure, person_status, person_name FROM orphaned_accounts WHERE tines_user_id = ${ID.departed} AND connector_id <> ${other}`,
    );
    expect(bob).toEqual({ days_since_departure: 40, person_status: 'departed', person_name: 'Bob' });
    const dan = await h.one<{ person_status: string; days_since_departure: number }>(
      `SELECT person_status, days_since_departure FROM orphaned_accounts WHERE tines_user_id = ${ID.permissions}`,
    );
    expect(dan).toEqual({ person_status: 'suspended', days_since_departure: 0 });
  });

  it('privileged_orphans: orphaned tenant admins, holders of tenant permissions and team admins, with why', async () => {
    expect(await ids('SELECT connector_id, tines_user_id FROM privileged_orphans')).toEqual([-2, 3, 4, 5]);
    const eve = await h.one<{ email: string; reasons: string[]; admin_teams: string[] }>(
      `SELECT email, reasons, admin_teams FROM privileged_orphans WHERE tines_user_id = ${ID.teamAdmin}`,
    );
    expect(eve).toEqual({ email: 'eve@example.com', reasons: ['team admin of: Security Operations'], admin_teams: ['Security Operations'] });
    const carol = await h.one<{ reasons: string[] }>(`SELECT reasons FROM privileged_orphans WHERE tines_user_id = ${ID.tenantAdmin}`);
    expect(carol.reasons[0]).toBe('tenant admin');
  });

  it('unowned_accounts: present accounts with no person, apart from external_users', async () => {
    expect(await ids('SELECT connector_id, tines_user_id FROM unowned_accounts')).toEqual([-3, 8, 12]);
  });

  it('a person who comes back is no longer behind an orphan; every view has connector_id, tines_user_id, email', async () => {
    await h.db.query(`UPDATE people SET status = 'active', status_changed_at = now() WHERE email_key = 'eve@example.com'`);
    expect(await ids('SELECT connector_id, tines_user_id FROM privileged_orphans')).toEqual([-2, 3, 4]);
    for (const view of ['account_owners', 'orphaned_accounts', 'unowned_accounts', 'privileged_orphans']) {
      const r = await h.db.query(`SELECT connector_id, tines_user_id, email FROM ${view} WHERE email IS NOT NULL LIMIT 1`);
      expect(r.rows, view).toHaveLength(1);
    }
  });
});
