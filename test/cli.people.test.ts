// The real `tines-connector people import` bin, then `report`: exit codes 0
// (loaded), 2 (bad rows, an unreadable file, bad arguments: nothing loaded)
// and 4 (held by the guard), and the report's owners agreeing with the views.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers, type FakeUser } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, inDb, type Harness } from './helpers/harness.js';

const CWD = childCwd('tines-connector-people-cwd-');
const CONNECTOR = 'acme-people';

function tenant(): FakeUser[] {
  const users = generateUsers(12, { seed: 18, emailDomain: 'example.com' });
  users.forEach((u, i) => Object.assign(u, { admin: i === 0, is_active: true, tenant_permissions: [], team_memberships: [] }));
  users[11]!.email = 'visitor@gmail.com';
  return users;
}

describe.each(backends())('people import through the bin (%s)', (backend) => {
  let h: Harness;
  const users = tenant();
  const file = (name: string, text: string) => {
    const path = join(CWD, `${backend}-${name}`);
    writeFileSync(path, text);
    return path;
  };
  // The database settings only (people import and report need no Tines variables).
  const cli = (args: string[]) => runCli(args, childEnv({ LOG_LEVEL: 'warn', ...h.testDb.env }), { cwd: CWD, timeoutMs: 30_000 });
  // The tenant's first 10 accounts (an admin first) and 20 people without a Tines account.
  const staff = users.slice(0, 10).map((u) => u.email);
  const extra = Array.from({ length: 20 }, (_, i) => `staff${i}@example.com`);
  const csv = (rows: string[]) => `\uFEFFemail,name,status,cost_centre\r\n${rows.join('\r\n')}\r\n`;

  beforeAll(async () => {
    h = await createHarness(backend, users);
    expect((await h.sync({}, { CONNECTOR_NAME: CONNECTOR, ORG_EMAIL_DOMAINS: 'example.com' })).result).toBe('succeeded');
    if (backend === 'embedded') await h.db.close(); // the child opens the data directory
  });
  afterAll(() => h?.close());

  it('loads a directory (exit 0), names the columns it ignores, and report shows orphaned, privileged and unowned accounts', async () => {
    const rows = [
      ...staff.map((e, i) => `${e},"Person, ${i}",${i === 0 || i === 3 ? 'departed' : 'active'},CC1`),
      ...extra.map((e) => `${e},Staff,active,CC2`),
    ];
    const r = await cli(['people', 'import', file('all.csv', csv(rows)), '--source', 'hr']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/people imported: source "hr", 30 people in the file\n\s+\+30 added/);
    expect(r.stderr).toMatch(/ignored columns "cost_centre"/);

    const json = await cli(['report', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const owners = (
      JSON.parse(json.stdout) as {
        connectors: {
          owners: Record<string, unknown> & {
            orphaned_accounts: { email: string; privileged: boolean; reasons: string[] | null; days_since_departure: number }[];
            unowned_accounts: { email: string }[];
          };
        }[];
      }
    ).connectors[0]!.owners;
    expect(owners).toMatchObject({ directory_people: 30, orphaned: 2, privileged_orphans: 1, unowned: 1 });
    expect(owners.orphaned_accounts.map((a) => [a.email, a.privileged, a.days_since_departure])).toEqual([
      [staff[0], true, 0],
      [staff[3], false, 0],
    ]);
    expect(owners.orphaned_accounts[0]!.reasons).toContain('tenant admin');
    expect(owners.unowned_accounts.map((a) => a.email)).toEqual([users[10]!.email]); // not visitor@gmail.com: external
    const views = await inDb(
      h,
      async (db) =>
        (await db.query<{ n: number }>('SELECT (SELECT count(*) FROM orphaned_accounts)::int + (SELECT count(*) FROM unowned_accounts)::int AS n')).rows[0]!.n,
    );
    expect(views).toBe(3);

    const text = await cli(['report']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/owners\s+2 orphaned \(1 privileged\), 1 unowned; 30 people in the directory/);
    expect(text.stdout).toMatch(new RegExp(`privileged orphans.*\\n\\s+${staff[0]!.replace(/[+.]/g, '\\$&')} \\(.*\\)\\s+departed today\\s+tenant admin`));
  });

  it('rejects a file with bad rows (exit 2), listing each by line, and loads nothing', async () => {
    const r = await cli([
      'people',
      'import',
      file('bad.csv', csv(['ok@example.com,Ok,active,', 'nope,No,active,', ',Nobody,,', 'ok2@example.com,Ok,retired,', 'OK@example.com,Dup,,'])),
    ]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe(
      'people import rejected: 4 bad rows, nothing loaded (source "directory")\n' +
        '  line 3: invalid email "nope"\n' +
        '  line 4: no email\n' +
        '  line 5: unknown status "retired" (expected active, suspended, departed)\n' +
        '  line 6: duplicate email "OK@example.com" (first on line 2)\n',
    );
    expect(await inDb(h, async (db) => (await db.query('SELECT 1 FROM people WHERE source = $1', ['directory'])).rows.length)).toBe(0);
  });

  it('holds a snapshot that departs too many (exit 4, nothing loaded) unless --allow-mass-departure; --json for scripts', async () => {
    const kept = [...staff, ...extra.slice(0, 5)].map((e) => `${e},Someone,active,`);
    const path = file('shrunk.csv', csv(kept));
    const held = await cli(['people', 'import', path, '--source', 'hr', '--json']);
    expect(held.code, held.stderr).toBe(4);
    expect(JSON.parse(held.stdout)).toMatchObject({ result: 'held', source: 'hr', departed: 15, present_before: 28 });
    expect(await inDb(h, async (db) => (await db.query(`SELECT 1 FROM people WHERE status = 'departed'`)).rows.length)).toBe(2);

    const forced = await cli(['people', 'import', path, '--source', 'hr', '--allow-mass-departure']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/15 departed/);
    expect(forced.stdout).toMatch(/\(2 returned\)/); // staff 0 and 3 are active in this file
    expect(await inDb(h, async (db) => (await db.query(`SELECT 1 FROM people WHERE status = 'departed'`)).rows.length)).toBe(15);
  });

  it('refuses bad arguments and unreadable files with exit 2 and a plain message', async () => {
    const cases: [string[], RegExp][] = [
      [['people'], /people import FILE\.csv/],
      [['people', 'export', 'x.csv'], /unknown subcommand "export"/],
      [['people', 'import'], /missing FILE\.csv/],
      [['people', 'import', 'a.csv', 'b.csv'], /unexpected argument "b\.csv"/],
      [['people', 'import', 'a.csv', '--force'], /Unknown option '--force'/],
      [['people', 'import', 'a.csv', '--source', ' '], /--source must not be empty/],
      [['people', 'import', join(CWD, 'missing.csv')], /cannot read .*missing\.csv: ENOENT; nothing loaded/],
      [['people', 'import', file('noemail.csv', 'mail,name\nx@example.com,X\n')], /no "email" column/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
