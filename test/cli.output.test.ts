// What the commands print, through the built bin: read-only commands need only
// the database settings; text from Tines is shown with its control characters
// escaped while the data stays byte for byte in the database and in --json;
// `query --format`; one ISO 8601 form for timestamps in --json; a closed pipe
// ends a command quietly; the ORG_EMAIL_DOMAINS hint reads the stored setting.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { CLI, childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, inDb, type Harness } from './helpers/harness.js';

const CHILD_CWD = childCwd();

const HOSTILE_FIRST = 'Eve\u001b]0;pwned\u0007';
const HOSTILE_LAST = 'Smith\nuser_removed             ceo@example.com';
const HOSTILE_TEAM = 'Red\u009b31mTeam';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z$/;
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/; // newline aside: it ends lines

function users(): FakeUser[] {
  const list = generateUsers(30, { seed: 5 });
  Object.assign(list[29]!, {
    email: 'eve@example.com',
    first_name: HOSTILE_FIRST,
    last_name: 'Smith',
    team_memberships: [{ team_id: 77, team_name: HOSTILE_TEAM, role: 'VIEWER' }],
  });
  return list;
}

/** Every string under a key ending in `_at`, wherever it is in a JSON document. */
function timestampsOf(doc: unknown, found: string[] = []): string[] {
  if (Array.isArray(doc)) doc.forEach((d) => timestampsOf(d, found));
  else if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      if (k.endsWith('_at') && typeof v === 'string') found.push(v);
      else timestampsOf(v, found);
    }
  }
  return found;
}

describe.each(backends())('cli output (%s)', (backend) => {
  let h: Harness;
  /** The database settings alone: no TINES_* variable at all. */
  let dbOnly: Record<string, string>;
  const cli = (args: string[], env: Record<string, string>) => runCli(args, childEnv({ LOG_LEVEL: 'warn', ...env }), { cwd: CHILD_CWD });

  beforeAll(async () => {
    h = await createHarness(backend, users());
    if (backend === 'embedded') await h.db.close(); // the children open the data directory
    dbOnly = Object.fromEntries(Object.entries(h.env).filter(([k]) => !k.startsWith('TINES_')));
    const first = await cli(['sync'], { ...h.env, ORG_EMAIL_DOMAINS: 'example.com' });
    expect(first.code, first.stderr).toBe(0);
    // A second sync makes the hostile rename the latest change `report` shows.
    h.fake.updateUser(30, { last_name: HOSTILE_LAST });
    const second = await cli(['sync'], { ...h.env, ORG_EMAIL_DOMAINS: 'example.com' });
    expect(second.code, second.stderr).toBe(0);
  });
  afterAll(() => h?.close());

  it('`status`, `report`, `query`, `migrate` and `delete` run with the database settings alone; `sync`, `reconnect` exit 2 naming TINES_TENANT_DOMAIN; `run` without it serves the registered connectors', async () => {
    for (const args of [['status'], ['status', '--json'], ['report'], ['query', 'SELECT count(*) AS n FROM tines_users'], ['migrate'], ['delete']]) {
      const r = await cli(args, dbOnly);
      // `delete` without --yes explains and exits 2 by design; it got past the configuration.
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(args[0] === 'delete' ? 2 : 0);
      expect(r.stderr, args.join(' ')).not.toMatch(/TINES_/);
    }
    // A schedule or a Tines limit only syncing reads does not stop a command that only reads.
    for (const args of [['status'], ['query', 'SELECT 1 AS one']]) {
      const r = await cli(args, { ...dbOnly, SYNC_SCHEDULE: '* * *', TINES_PAGE_SIZE: 'abc' });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    // run: the environment's connector is optional (CONTRACT, "Many connectors"); the other variables are still checked.
    const run = await cli(['run'], { ...dbOnly, TINES_PAGE_SIZE: '0' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/TINES_PAGE_SIZE/);
    expect(run.stderr).not.toMatch(/TINES_TENANT_DOMAIN|TINES_API_KEY/);
    for (const args of [['sync'], ['reconnect']]) {
      const r = await cli(args, { ...dbOnly, TINES_PAGE_SIZE: '0' });
      expect(r.code, args[0]).toBe(2);
      // Every configuration error at once: the missing tenant and the bad page size together.
      expect(r.stderr).toMatch(/TINES_TENANT_DOMAIN is required/);
      expect(r.stderr).toMatch(/TINES_API_KEY is required/);
      expect(r.stderr).toMatch(/TINES_PAGE_SIZE/);
    }
  });

  it('`report` and `query` show Tines text with control characters escaped; no forged line, no escape sequence reaches the terminal', async () => {
    const report = await cli(['report'], dbOnly);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).not.toMatch(RAW_CONTROL);
    expect(report.stdout).toContain('Eve\\u001b]0;pwned\\u0007');
    expect(report.stdout).not.toMatch(/^\s*user_removed\s+ceo@example\.com/m);
    const table = await cli(
      [
        'query',
        `SELECT first_name, last_name, (SELECT team_name FROM team_memberships m WHERE m.tines_user_id = u.tines_user_id) AS team FROM tines_users u WHERE email = 'eve@example.com'`,
      ],
      dbOnly,
    );
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).not.toMatch(RAW_CONTROL);
    expect(table.stdout).toContain('Eve\\u001b]0;pwned\\u0007');
    expect(table.stdout).toContain('Smith\\nuser_removed');
    expect(table.stdout).toContain('Red\\u009b31mTeam');
    expect(table.stdout.split('\n')).toHaveLength(5); // header, rule, one row, count, final newline
    const status = await cli(['status'], dbOnly);
    expect(status.stdout).not.toMatch(RAW_CONTROL);
  });

  it('the data stays byte for byte: in the database, in `query --json`, `report --json` and `query --format csv`', async () => {
    const stored = await inDb(
      h,
      async (db) =>
        (await db.query<{ first_name: string; last_name: string }>(`SELECT first_name, last_name FROM tines_users WHERE email = 'eve@example.com'`)).rows[0],
    );
    expect(stored).toEqual({ first_name: HOSTILE_FIRST, last_name: HOSTILE_LAST });
    const json = await cli(['query', `SELECT first_name, last_name FROM tines_users WHERE email = 'eve@example.com'`, '--json'], dbOnly);
    expect(JSON.parse(json.stdout)).toEqual([{ first_name: HOSTILE_FIRST, last_name: HOSTILE_LAST }]);
    const report = await cli(['report', '--json'], dbOnly);
    expect(report.stdout).toContain(JSON.stringify(HOSTILE_LAST).slice(1, -1));
    const csv = await cli(['query', `SELECT first_name, last_name FROM tines_users WHERE email = 'eve@example.com'`, '--format', 'csv'], dbOnly);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe(`first_name,last_name\n${HOSTILE_FIRST},"${HOSTILE_LAST}"\n`);
  });

  it('`query --format`: table cells are whole, csv quotes, json as --json; a bad format exits 2', async () => {
    const long = 'x'.repeat(150);
    const t = await cli(['query', `SELECT '${long}' AS long, 'a,b "c"' AS tricky`, '--format', 'table'], dbOnly);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain(long);
    const c = await cli(['query', `SELECT '${long}' AS long, 'a,b "c"' AS tricky`, '--format', 'csv'], dbOnly);
    expect(c.stdout).toBe(`long,tricky\n${long},"a,b ""c"""\n`);
    const j = await cli(['query', 'SELECT 1 AS one', '--format', 'json'], dbOnly);
    expect(JSON.parse(j.stdout)).toEqual([{ one: 1 }]);
    // An empty result still has its header (it printed "(no columns)").
    const empty = await cli(['query', 'SELECT email, first_name, removed_at FROM tines_users WHERE false;'], dbOnly);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toMatch(/^email\s+first_name\s+removed_at\n-+\s+-+\s+-+\n\(0 rows\)\n$/);
    const emptyCsv = await cli(['query', 'WITH x AS (SELECT 1 AS a) SELECT * FROM x WHERE a = 2 -- none', '--format', 'csv'], dbOnly);
    expect(emptyCsv.stdout).toBe('a\n');
    const bad = await cli(['query', 'SELECT 1', '--format', 'xml'], dbOnly);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format must be one of table, json, csv/);
  });

  it('every timestamp in `status --json`, `report --json` and `query --json` has one ISO 8601 form (UTC, Z)', async () => {
    const status = JSON.parse((await cli(['status', '--json'], dbOnly)).stdout) as unknown;
    const report = JSON.parse((await cli(['report', '--json'], dbOnly)).stdout) as unknown;
    const stamps = [...timestampsOf(status), ...timestampsOf(report)];
    expect(stamps.length).toBeGreaterThan(8);
    for (const s of stamps) expect(s).toMatch(ISO);
    const rows = JSON.parse(
      (await cli(['query', 'SELECT first_seen_at, status_changed_at FROM tines_users, connectors LIMIT 1', '--json'], dbOnly)).stdout,
    ) as Record<string, string>[];
    expect(rows[0]!.first_seen_at).toMatch(ISO);
    expect(rows[0]!.status_changed_at).toMatch(ISO);
  });

  it('`status` says whether external_users lists anyone from the connector`s stored ORG_EMAIL_DOMAINS, not the caller`s environment', async () => {
    const r = await cli(['status'], dbOnly); // no ORG_EMAIL_DOMAINS here; the sync stored example.com
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/external\s+users outside example\.com are in external_users/);
    expect(r.stdout).not.toMatch(/ORG_EMAIL_DOMAINS is not set/);
  });

  it('`query … | head`: the reader closing the pipe ends the command quietly with exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'query', `SELECT g, repeat('x', 200) AS filler FROM generate_series(1, 20000) g`], {
      cwd: CHILD_CWD,
      env: childEnv({ ...dbOnly, LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Like `head -1`: read the first chunk, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
