// `people import` on both backends: the CSV as CSV has it (BOM, CRLF, quotes,
// embedded commas and line breaks), bad rows by line with nothing loaded, and
// the snapshot semantics (departure, return, per-source isolation, the guard).
import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { DirectoryFileError } from '../src/people/directory-csv.js';
import { importPeople, type ImportOutcome } from '../src/people/import.js';
import { backends, openTestDb } from './helpers/backends.js';

const guard = loadConfig({ TINES_TENANT_DOMAIN: 'example.tines.com', TINES_API_KEY: 'x', REMOVAL_GUARD_PERCENT: '20', REMOVAL_GUARD_MIN: '10' }).sync;
const log = createLogger('silent');

interface Person {
  email: string;
  name: string | null;
  status: string;
  status_changed_at: string;
  department: string | null;
  manager_email: string | null;
  external_id: string | null;
  source: string | null;
}

describe.each(backends())('people import (%s)', (backend) => {
  const t = openTestDb(backend);
  const load = (csv: string, source = 'hr', allowMassDeparture = false): Promise<ImportOutcome> =>
    importPeople(t.db, Readable.from([Buffer.from(csv, 'utf8')]), { source, allowMassDeparture, guard, log });
  const people = async () =>
    (
      await t.db.query<Person>(
        'SELECT email, name, status, status_changed_at::text, department, manager_email, external_id, source FROM people ORDER BY email_key',
      )
    ).rows;
  const person = async (email: string) =>
    (await t.db.query<Person>('SELECT *, status_changed_at::text FROM people WHERE email_key = lower($1)', [email])).rows[0];

  beforeEach(async () => {
    await t.db.query('DELETE FROM people');
  });

  describe('reading the CSV', () => {
    it('reads a UTF-8 BOM, CRLF line ends, quoted fields with commas, quotes and line breaks, and non-ASCII text', async () => {
      const csv =
        '\uFEFFEmail,Name,Department,Status,External_ID\r\n' +
        '"ada@example.com","Lovelace, Ada","R&D, ""Engines""",Active,E1\r\n' +
        'zoë@example.com,"Zoë\r\nMüller",Ops,,E2\r\n' +
        '\r\n' +
        '  Bob@Example.com  , Bob ,,suspended,\r\n';
      const o = await load(csv);
      expect(o).toMatchObject({ result: 'loaded', rows: 3, added: 3, updated: 0, departed: 0, ignored_columns: [] });
      expect(await people()).toEqual([
        expect.objectContaining({
          email: 'ada@example.com',
          name: 'Lovelace, Ada',
          department: 'R&D, "Engines"',
          status: 'active',
          external_id: 'E1',
          source: 'hr',
        }),
        expect.objectContaining({ email: 'Bob@Example.com', name: 'Bob', department: null, status: 'suspended', external_id: null }),
        expect.objectContaining({ email: 'zoë@example.com', name: 'Zoë\r\nMüller', department: 'Ops', status: 'active' }),
      ]);
    });

    it('reads LF files and a file without a final line break; columns it does not know are ignored and named', async () => {
      const o = await load('email,name,favourite_colour,\nada@example.com,Ada,green,\nbob@example.com,Bob,blue,');
      expect(o).toMatchObject({ result: 'loaded', rows: 2, added: 2, ignored_columns: ['favourite_colour'] });
      expect((await people()).map((p) => p.name)).toEqual(['Ada', 'Bob']);
    });

    it('reports every bad row by the line it starts on (after quoted line breaks too) and loads nothing', async () => {
      const csv = [
        'email,name,status,manager_email', // 1
        'ada@example.com,"Ada', // 2
        'Lovelace",active,', // 3
        ',No Email,active,', // 4
        'not-an-email,Someone,,', // 5
        'carol@example.com,Carol,on leave,', // 6
        'ADA@example.com ,Ada again,,', // 7
        '', // 8
        'dan@example.com,Dan,,N/A', // 9
        'eve@example.com,Eve,active,boss@example.com,extra', // 10
        'fay@example.com,"Fay\r\n2",,', // 11-12
        'fay@EXAMPLE.com,Fay,,', // 13
        'gus@example.com,Gus,departed,', // 14
      ].join('\r\n');
      const o = await load(csv);
      expect(o.result).toBe('rejected');
      if (o.result !== 'rejected') return;
      expect(o.bad_row_count).toBe(7);
      expect(o.bad_rows).toEqual([
        { line: 4, problem: 'no email' },
        { line: 5, problem: 'invalid email "not-an-email"' },
        { line: 6, problem: 'unknown status "on leave" (expected active, suspended, departed)' },
        { line: 7, problem: 'duplicate email "ADA@example.com" (first on line 2)' },
        { line: 9, problem: 'invalid manager_email "N/A"' },
        { line: 10, problem: '5 fields, but the header has 4 (an unquoted comma?)' },
        { line: 13, problem: 'duplicate email "fay@EXAMPLE.com" (first on line 11)' },
      ]);
      expect(await people()).toEqual([]);
    });

    it('lists the first 1000 bad rows in line order and counts them all', async () => {
      const rows = Array.from({ length: 1200 }, (_, i) => (i % 2 === 0 ? `bad${i}` : `dup@example.com`));
      const o = await load(`email\n${rows.join('\n')}\n`);
      expect(o.result).toBe('rejected');
      if (o.result !== 'rejected') return;
      expect(o.bad_row_count).toBe(600 + 599);
      expect(o.bad_rows).toHaveLength(1000);
      expect(o.bad_rows.slice(0, 3)).toEqual([
        { line: 2, problem: 'invalid email "bad0"' },
        { line: 4, problem: 'invalid email "bad2"' },
        { line: 5, problem: 'duplicate email "dup@example.com" (first on line 3)' },
      ]);
      expect(o.bad_rows.map((b) => b.line)).toEqual([...o.bad_rows.map((b) => b.line)].sort((a, b) => a - b));
    });

    it('reports an unclosed quote by line and loads nothing', async () => {
      const o = await load('email,name\nada@example.com,Ada\nbob@example.com,"Bob\ncarol@example.com,Carol\n');
      expect(o.result).toBe('rejected');
      if (o.result !== 'rejected') return;
      expect(o.bad_rows).toHaveLength(1);
      expect(o.bad_rows[0]).toMatchObject({ line: 3 });
      expect(o.bad_rows[0]!.problem).toMatch(/not valid CSV.*Quote Not Closed/);
      expect(await people()).toEqual([]);
    });

    it('refuses a file without a header row or without an email column', async () => {
      await expect(load('')).rejects.toThrow(DirectoryFileError);
      await expect(load('\r\n\r\n')).rejects.toThrow(/header row/);
      await expect(load('mail,name\nada@example.com,Ada\n')).rejects.toThrow(/no "email" column; it has "mail", "name"/);
      await expect(load('email,Email\nada@example.com,x\n')).rejects.toThrow(/names the column "email" twice/);
      expect(await people()).toEqual([]);
    });

    it('loads a header-only file of a new source as an empty snapshot', async () => {
      expect(await load('email,name\r\n', 'empty')).toMatchObject({ result: 'loaded', rows: 0, added: 0, departed: 0 });
    });
  });

  describe('the snapshot', () => {
    const roster = (emails: string[], extra = '') => `email,name,department\n${emails.map((e) => `${e},${e.split('@')[0]},Eng${extra}`).join('\n')}\n`;
    const five = ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'];

    it('departs the people of the source missing from the file, and makes returning ones active again', async () => {
      expect(await load(roster(five))).toMatchObject({ result: 'loaded', added: 5, departed: 0 });
      await t.db.query(`UPDATE people SET status_changed_at = now() - interval '40 days', updated_at = now() - interval '40 days'`);
      const before = await person('e@example.com');

      const o = await load(roster(five.slice(0, 4)));
      expect(o).toMatchObject({ result: 'loaded', rows: 4, added: 0, updated: 0, unchanged: 4, departed: 1, returned: 0, present_before: 5 });
      const gone = await person('e@example.com');
      expect(gone).toMatchObject({ status: 'departed', name: 'e', department: 'Eng' });
      expect(Date.parse(gone!.status_changed_at)).toBeGreaterThan(Date.now() - 60_000);
      // Unchanged people are not rewritten.
      expect((await person('a@example.com'))!.status_changed_at).toBe(before!.status_changed_at);
      const untouched = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM people WHERE updated_at < now() - interval '39 days'`);
      expect(untouched.rows[0]!.n).toBe(4);

      // Missing again: stays departed, its departure date kept.
      await t.db.query(`UPDATE people SET status_changed_at = now() - interval '3 days' WHERE email_key = 'e@example.com'`);
      expect(await load(roster(five.slice(0, 4)))).toMatchObject({ departed: 0, updated: 0 });
      const departedAt = (await person('e@example.com'))!.status_changed_at;
      expect(Date.parse(departedAt)).toBeLessThan(Date.now() - 2 * 86_400_000);

      // Back in the file: active again, with a new status_changed_at.
      expect(await load(roster(five))).toMatchObject({ result: 'loaded', added: 0, updated: 1, returned: 1, departed: 0 });
      const back = await person('e@example.com');
      expect(back!.status).toBe('active');
      expect(Date.parse(back!.status_changed_at)).toBeGreaterThan(Date.now() - 60_000);
    });

    it('matches people case-insensitively and updates changed ones; columns the file lacks are left as they are', async () => {
      await load('email,name,department,manager_email,external_id\nada@example.com,Ada,Eng,boss@example.com,E1\nbob@example.com,Bob,Ops,,E2\n');
      const o = await load('email,name\nADA@Example.com,Ada Lovelace\nbob@example.com,Bob\n');
      expect(o).toMatchObject({ result: 'loaded', added: 0, updated: 1, unchanged: 1, departed: 0 });
      expect(await person('ada@example.com')).toMatchObject({
        email: 'ADA@Example.com',
        name: 'Ada Lovelace',
        department: 'Eng',
        manager_email: 'boss@example.com',
        external_id: 'E1',
      });
      // A status in the file wins; without one, people are active.
      await load('email,status\nada@example.com,Suspended\n', 'hr', true);
      expect(await person('ada@example.com')).toMatchObject({ status: 'suspended' });
      expect(await person('bob@example.com')).toMatchObject({ status: 'departed' });
    });

    it('takes status_changed_at from the file when it gives one (a date is midnight UTC), and now when a status changes without one', async () => {
      const at = async (email: string) =>
        (
          await t.db.query<{ t: string }>(
            `SELECT to_char(status_changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS t FROM people WHERE email_key = $1`,
            [email],
          )
        ).rows[0]!.t;
      const file =
        'email,status,status_changed_at\na@example.com,departed,2026-10-01\nb@example.com,active,2026-11-29T08:30:00+02:00\nc@example.com,suspended,\n';
      expect(await load(file)).toMatchObject({ result: 'loaded', added: 3 });
      expect(await at('a@example.com')).toBe('2026-10-01T00:00:00');
      expect(await at('b@example.com')).toBe('2026-11-29T06:30:00');
      expect(Date.parse(`${await at('c@example.com')}Z`)).toBeGreaterThan(Date.now() - 120_000);
      // The same file again changes nothing; a corrected date is an update.
      expect(await load(file)).toMatchObject({ updated: 0, unchanged: 3 });
      expect(await load(file.replace('2026-10-01', '2026-09-15'))).toMatchObject({ updated: 1, unchanged: 2 });
      expect(await at('a@example.com')).toBe('2026-09-15T00:00:00');
      // A file without the column keeps the dates while the statuses stay.
      expect(await load('email,status\na@example.com,departed\nb@example.com,active\nc@example.com,suspended\n')).toMatchObject({ updated: 0 });
      expect(await at('a@example.com')).toBe('2026-09-15T00:00:00');
      // Its days since departure come from that date.
      const days = await t.db.query<{ d: number }>(
        `SELECT floor(extract(epoch FROM now() - status_changed_at) / 86400)::int AS d FROM people WHERE email_key = 'a@example.com'`,
      );
      expect(days.rows[0]!.d).toBe(Math.floor((Date.now() - Date.parse('2026-09-15T00:00:00Z')) / 86_400_000));
    });

    it('reports a status_changed_at that is no date, or in the future, as a bad row', async () => {
      const o = await load(
        'email,status,status_changed_at\na@example.com,departed,2026-02-30\nb@example.com,departed,last week\nc@example.com,departed,2999-01-01\nd@example.com,departed,2026-10-01 17:00\n',
      );
      expect(o.result).toBe('rejected');
      if (o.result !== 'rejected') return;
      expect(o.bad_rows).toEqual([
        { line: 2, problem: 'invalid status_changed_at "2026-02-30" (expected a date such as 2026-10-31, or 2026-10-31T17:00:00Z)' },
        { line: 3, problem: 'invalid status_changed_at "last week" (expected a date such as 2026-10-31, or 2026-10-31T17:00:00Z)' },
        { line: 4, problem: 'status_changed_at "2999-01-01" is in the future' },
      ]);
    });

    it('touches only its own source: another source and rows written with SQL are not departed', async () => {
      await load(roster(five), 'hr');
      await load(roster(['x@example.com', 'y@example.com']), 'contractors');
      await t.db.query(`INSERT INTO people (email, name) VALUES ('manual@example.com', 'Written with SQL')`);
      const o = await load(roster(['x@example.com']), 'contractors');
      expect(o).toMatchObject({ result: 'loaded', departed: 1, present_before: 2 });
      const rows = await people();
      expect(rows.filter((p) => p.status === 'departed').map((p) => p.email)).toEqual(['y@example.com']);
      expect(rows.find((p) => p.email === 'manual@example.com')).toMatchObject({ status: 'active', source: null });
      // A person another source listed now belongs to the source that lists them.
      const claim = await load(roster(['x@example.com', 'manual@example.com']), 'contractors');
      expect(claim).toMatchObject({ claimed: 1, updated: 1 });
      expect(await person('manual@example.com')).toMatchObject({ source: 'contractors', name: 'manual' });
    });

    it('holds a snapshot that would depart more than the guard allows, and loads it with --allow-mass-departure', async () => {
      const many = Array.from({ length: 60 }, (_, i) => `p${i}@example.com`);
      await load(roster(many));
      // 11 of 60: over 10 but not over 20 %: loaded.
      expect(await load(roster(many.slice(0, 49)))).toMatchObject({ result: 'loaded', departed: 11 });
      // 13 more of the 49 left: over 20 % and over 10: held, nothing written (a new person not added either).
      const held = await load(roster([...many.slice(0, 36), 'new@example.com']));
      expect(held).toMatchObject({ result: 'held', departed: 13, present_before: 49, added: 1 });
      expect(held.result === 'held' && held.message).toMatch(/13 of the 49 people of source "hr".*--allow-mass-departure/);
      expect((await people()).filter((p) => p.status !== 'departed')).toHaveLength(49);
      expect(await person('new@example.com')).toBeUndefined();
      const forced = await load(roster([...many.slice(0, 36), 'new@example.com']), 'hr', true);
      expect(forced).toMatchObject({ result: 'loaded', departed: 13, added: 1 });
      expect((await people()).filter((p) => p.status !== 'departed')).toHaveLength(37);
    });

    it('holds a file that would depart everyone (an empty export) when over the guard', async () => {
      const many = Array.from({ length: 12 }, (_, i) => `q${i}@example.com`);
      await load(roster(many), 'it');
      expect(await load('email\n', 'it')).toMatchObject({ result: 'held', departed: 12 });
      expect((await people()).every((p) => p.status === 'active')).toBe(true);
    });
  });
});
