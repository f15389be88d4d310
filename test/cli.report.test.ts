// The real `tines-connector report` bin after syncs with joiners and a leaver:
// --json is one JSON document whose numbers are what the tables and views say;
// without --json, a readable summary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli, type CliResult } from './helpers/cli.js';
import { createHarness, inDb, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd('tines-connector-report-cwd-');
const DAY = 86_400_000;
const CONNECTOR = 'acme-tines-report';

/** A tenant with every kind of user the report counts. */
function tenant(): FakeUser[] {
  const now = Date.now();
  const users = generateUsers(36, { seed: 31, emailDomain: 'example.com', now });
  users[2]!.last_seen = new Date(now - 130 * DAY).toISOString();
  users[3]!.last_seen = null;
  users[3]!.is_active = true;
  users[4]!.admin = true;
  users[5]!.email = 'outsider.one@gmail.com';
  users[6]!.email = 'outsider.two@contractor.io';
  users[7]!.email = 'inside@eu.example.com';
  return users;
}

interface ReportJson {
  database: string;
  generated_at: string;
  connectors: Array<{
    name: string;
    status: string;
    users_present: number;
    baseline_users: number | null;
    joined_7d: number;
    joined_30d: number;
    left_7d: number;
    left_30d: number;
    inactive: number;
    never_seen: number;
    privileged: number;
    tenant_admins: number;
    external: number | null;
    recent_changes: Array<{ occurred_at: string; kind: string; email: string | null; name: string | null }>;
  }>;
}

describe.each(backends())('report (%s)', (backend) => {
  let h: Harness;
  const users = tenant();
  const ENV = { CONNECTOR_NAME: CONNECTOR, ORG_EMAIL_DOMAINS: 'example.com', INACTIVE_AFTER_DAYS: '90' };
  const cli = (args: string[]) =>
    runCli(args, childEnv({ LOG_LEVEL: 'warn', ...h.env, CONNECTOR_NAME: CONNECTOR, ORG_EMAIL_DOMAINS: 'example.com' }), { cwd: CHILD_CWD, timeoutMs: 30_000 });
  /** One `report --json` run, shared by the tests that read it (each spawn opens the database anew). */
  let jsonRun: Promise<CliResult> | undefined;
  const reportJson = () => (jsonRun ??= cli(['report', '--json']));
  const n = async (db: Database, sql: string) => Number((await db.query<{ n: number }>(sql)).rows[0]!.n);

  beforeAll(async () => {
    h = await createHarness(backend, users);
    expect((await h.sync({}, ENV)).result).toBe('succeeded');
    // Two joiners (one an outsider), one leaver, then a second sync.
    const [j1, j2] = generateUsers(2, { startId: 500, seed: 99, emailDomain: 'example.com' });
    h.fake.addUser({ ...j1!, last_seen: new Date().toISOString(), is_active: true });
    h.fake.addUser({ ...j2!, email: 'new.joiner@outlook.com', last_seen: new Date().toISOString(), is_active: true });
    h.fake.removeUser(users[10]!.id);
    const second = await h.sync({}, ENV);
    expect(second.result).toBe('succeeded');
    expect(second.counts).toMatchObject({ usersAdded: 2, usersRemoved: 1 });
    // One of the two joiners arrived 10 days ago: joined in 30 days, not in 7.
    await h.db.query(
      `UPDATE change_events SET occurred_at = now() - interval '10 days'
        WHERE id IN (SELECT id FROM change_events WHERE kind = 'user_added' ORDER BY id DESC LIMIT 1)`,
    );
    if (backend === 'embedded') await h.db.close(); // the child opens the data directory
  });
  afterAll(() => h?.close());

  it('--json: exit 0, one JSON document whose numbers match the tables and views', async () => {
    const r = await reportJson();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as ReportJson; // throws unless stdout is exactly one JSON document
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(doc.connectors).toHaveLength(1);
    const rep = doc.connectors[0]!;
    expect(rep).toMatchObject({ name: CONNECTOR, status: 'active' });

    const expected = await inDb(h, async (db) => ({
      users_present: await n(db, 'SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL'),
      joined_7d: await n(
        db,
        `SELECT count(*)::int AS n FROM change_events WHERE kind IN ('user_added', 'user_restored') AND NOT details ? 'baseline' AND occurred_at >= now() - interval '7 days'`,
      ),
      joined_30d: await n(
        db,
        `SELECT count(*)::int AS n FROM change_events WHERE kind IN ('user_added', 'user_restored') AND NOT details ? 'baseline' AND occurred_at >= now() - interval '30 days'`,
      ),
      baseline_users: await n(db, `SELECT count(*)::int AS n FROM change_events WHERE kind = 'user_added' AND details @> '{"baseline": true}'`),
      left_7d: await n(db, `SELECT count(*)::int AS n FROM tines_users WHERE removed_at >= now() - interval '7 days'`),
      inactive: await n(db, 'SELECT count(*)::int AS n FROM inactive_users'),
      privileged: await n(db, 'SELECT count(*)::int AS n FROM privileged_users'),
      external: await n(db, 'SELECT count(*)::int AS n FROM external_users'),
    }));
    expect(rep).toMatchObject(expected);

    // And the same numbers from what the fake tenant holds now, independently of the SQL.
    const present = [...h.fake.users.values()];
    const cutoff = Date.now() - 90 * DAY;
    expect(rep.users_present).toBe(present.length);
    expect(rep.users_present).toBe(36 + 2 - 1);
    // The first sync's 36 users are the baseline, not joiners; the second sync's two are.
    expect(rep.baseline_users).toBe(36);
    expect(rep.joined_7d).toBe(1);
    expect(rep.joined_30d).toBe(2);
    expect(rep.left_7d).toBe(1);
    expect(rep.left_30d).toBe(1);
    expect(rep.inactive).toBe(present.filter((u) => u.is_active !== false && (u.last_seen === null || Date.parse(u.last_seen) < cutoff)).length);
    expect(rep.never_seen).toBe(present.filter((u) => u.is_active !== false && u.last_seen === null).length);
    expect(rep.privileged).toBe(
      present.filter((u) => u.admin || u.tenant_permissions.length > 0 || u.team_memberships.some((t) => t.role === 'TEAM_ADMIN')).length,
    );
    expect(rep.tenant_admins).toBe(present.filter((u) => u.admin).length);
    expect(rep.external).toBe(3); // gmail.com, contractor.io, outlook.com; not eu.example.com
    expect(rep.inactive).toBeGreaterThan(0);
    expect(rep.privileged).toBeGreaterThan(0);
  });

  it('--json: recent_changes has at most five entries, newest first, the newest from the last sync', async () => {
    const r = await reportJson();
    expect(r.code).toBe(0);
    const changes = (JSON.parse(r.stdout) as ReportJson).connectors[0]!.recent_changes;
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.length).toBeLessThanOrEqual(5);
    for (let i = 1; i < changes.length; i++) {
      expect(Date.parse(changes[i - 1]!.occurred_at)).toBeGreaterThanOrEqual(Date.parse(changes[i]!.occurred_at));
    }
    const newest = await inDb(
      h,
      async (db) =>
        (
          await db.query<{ kind: string; email: string | null; occurred_at: Date | string }>(
            `SELECT kind, email, occurred_at FROM change_events WHERE NOT details @> '{"baseline": true}' ORDER BY occurred_at DESC, id DESC LIMIT 5`,
          )
        ).rows,
    );
    expect(changes.map((c) => ({ kind: c.kind, email: c.email, at: Date.parse(c.occurred_at) }))).toEqual(
      newest.map((c) => ({ kind: c.kind, email: c.email, at: new Date(c.occurred_at).getTime() })),
    );
    // The second sync's changes include the leaver and both joiners.
    const kinds = new Set(
      (
        await inDb(
          h,
          async (db) =>
            (await db.query<{ kind: string }>('SELECT DISTINCT kind FROM change_events WHERE sync_run_id = (SELECT max(sync_run_id) FROM change_events)')).rows,
        )
      ).map((k) => k.kind),
    );
    expect(kinds).toContain('user_removed');
    expect(kinds).toContain('user_added');
  });

  it('without --json: readable text with the connector name and the users present', async () => {
    const r = await cli(['report']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(CONNECTOR);
    expect(r.stdout).toMatch(/users present\s+37\b/);
    expect(r.stdout).toMatch(/left\s+1 in 7 days/);
    expect(r.stdout).toMatch(/joined\s+1 in 7 days, 2 in 30 days \(since the first sync\)/);
    expect(r.stdout).toMatch(/baseline\s+36 users found by the first sync/);
    expect(r.stdout).toMatch(/external\s+3 outside example\.com/);
    expect(() => JSON.parse(r.stdout)).toThrow();
  });
});
