// The directory CSV of `people import`, read as a stream: a header row naming
// the columns (`email` required), then one person per record. Each record is
// checked on its own and comes out as a row or as a bad row with the line it
// starts on; duplicates across records are found later, in SQL, where the rows
// already are (so memory stays flat whatever the file's size).
import type { Readable } from 'node:stream';
import { CsvError, parse, type Options } from 'csv-parse';
import { z } from 'zod';

/** The people columns a file may carry, in the order rows hold them. */
export const PERSON_COLUMNS = ['email', 'name', 'status', 'status_changed_at', 'department', 'manager_email', 'external_id'] as const;
export type PersonColumn = (typeof PERSON_COLUMNS)[number];

export const PERSON_STATUSES = ['active', 'suspended', 'departed'] as const;
export type PersonStatus = (typeof PERSON_STATUSES)[number];

/** One person as the file has it: trimmed, empty cells null, status lower-cased (`active` when not given). */
export interface DirectoryRow {
  line: number;
  email: string;
  name: string | null;
  status: PersonStatus;
  /** When the status took effect as the file says (ISO 8601, UTC), or null: the import's time when the status changes. */
  status_changed_at: string | null;
  department: string | null;
  manager_email: string | null;
  external_id: string | null;
}

export interface BadRow {
  line: number;
  problem: string;
}

export interface DirectoryHeader {
  /** The people columns the file has: the import updates only these. */
  columns: PersonColumn[];
  /** Header names that are no people column: their values are ignored. */
  ignored: string[];
}

export type DirectoryItem = { kind: 'header'; header: DirectoryHeader } | { kind: 'row'; row: DirectoryRow } | { kind: 'bad'; bad: BadRow };

/** The file cannot be read as a directory at all (no header, no email column): nothing to report per line. */
export class DirectoryFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DirectoryFileError';
  }
}

// Liberal on purpose (any non-blank local part, one @, a domain without blanks): it catches
// "N/A", "john smith" and a name in the email column, not the RFC's finer points.
const EMAIL = z.regexes.unicodeEmail;
const LINE_BREAKS = /\r\n|\r|\n/g;
const isStatus = (s: string): s is PersonStatus => (PERSON_STATUSES as readonly string[]).includes(s);
// A date, or a date and time with an optional offset (none means UTC).
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;
const DAY_MS = 86_400_000;

/** A status_changed_at cell as ISO 8601 in UTC, or why it is not one. */
export function statusTimestamp(cell: string, now = Date.now()): { iso: string } | { problem: string } {
  const m = TIMESTAMP.exec(cell);
  const [, date, time, zone] = m ?? [];
  const ms = m
    ? Date.parse(
        `${date}T${time ?? '00:00'}${
          zone
            ? zone
                .toUpperCase()
                .replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')
                .replace(/^([+-]\d{2})$/, '$1:00')
            : 'Z'
        }`,
      )
    : NaN;
  // Date.parse rolls 2026-02-30 over to March: a date must survive the round trip.
  if (Number.isNaN(ms) || (date && !time && new Date(ms).toISOString().slice(0, 10) !== date)) {
    return { problem: `invalid status_changed_at "${cell}" (expected a date such as 2026-10-31, or 2026-10-31T17:00:00Z)` };
  }
  // A day of slack for dates written in a time zone ahead of UTC.
  if (ms > now + DAY_MS) return { problem: `status_changed_at "${cell}" is in the future` };
  return { iso: new Date(ms).toISOString() };
}

function lineBreaks(raw: string): number {
  let n = 0;
  LINE_BREAKS.lastIndex = 0;
  while (LINE_BREAKS.exec(raw)) n++;
  return n;
}

/**
 * Reads a directory CSV: first the header item, then an item per record
 * (blank lines are skipped). A UTF-8 BOM, CRLF or LF line ends, quoted fields
 * with commas, quotes and line breaks are all read as CSV has them.
 * Throws DirectoryFileError when there is no usable header row.
 */
export async function* readDirectory(input: Readable): AsyncGenerator<DirectoryItem> {
  // autoDestroy off: a syntax error at the end must not discard the records parsed before it (they are read first).
  // (csv-parse hands stream options on to its Transform; its types do not list them.)
  const options: Options & { autoDestroy: boolean } = { bom: true, raw: true, relax_column_count: true, skip_empty_lines: false, autoDestroy: false };
  const parser = input.pipe(parse(options as Options));
  input.once('error', (err) => parser.destroy(err));
  let header: (PersonColumn | undefined)[] | undefined;
  let width = 0;
  // csv-parse's own line count takes a CRLF inside quotes for two lines; the raw text of each record tells exactly.
  let line = 1;
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      const start = line;
      line += lineBreaks(raw);
      if (record.every((v) => v.trim() === '')) continue;
      if (!header) {
        header = readHeader(record, start);
        width = record.length;
        const columns = header.filter((c): c is PersonColumn => c !== undefined);
        const ignored = record.map((h) => h.trim()).filter((h, i) => h !== '' && header![i] === undefined);
        yield { kind: 'header', header: { columns, ignored } };
        continue;
      }
      yield checkRecord(record, header, width, start);
    }
  } catch (err) {
    if (!(err instanceof CsvError)) throw new DirectoryFileError(`cannot read the file: ${(err as Error).message}`, { cause: err });
    // A syntax error ends the reading (an unclosed quote swallows the rest of the file); it is in the record starting at `line`.
    const what = `${err.message.replace(/ at line \d+/g, '')} (${err.code})`;
    if (!header) throw new DirectoryFileError(`the header row is not valid CSV: ${what}`, { cause: err });
    yield { kind: 'bad', bad: { line, problem: `not valid CSV: ${what}; nothing from this line on was read` } };
    return;
  } finally {
    parser.destroy();
  }
  if (!header) throw new DirectoryFileError('the file is empty: a header row naming the columns (at least "email") is required');
}

function readHeader(record: string[], line: number): (PersonColumn | undefined)[] {
  const names = record.map((h) => h.trim().toLowerCase());
  const seen = new Set<string>();
  for (const n of names) {
    if (n && seen.has(n)) throw new DirectoryFileError(`the header row (line ${line}) names the column "${n}" twice`);
    seen.add(n);
  }
  if (!seen.has('email')) {
    throw new DirectoryFileError(
      `the header row (line ${line}) has no "email" column; it has ${names.map((n) => `"${n}"`).join(', ')}. ` + `Known columns: ${PERSON_COLUMNS.join(', ')}`,
    );
  }
  return names.map((n) => ((PERSON_COLUMNS as readonly string[]).includes(n) ? (n as PersonColumn) : undefined));
}

function checkRecord(record: string[], header: readonly (PersonColumn | undefined)[], width: number, line: number): DirectoryItem {
  if (record.length > width) {
    return { kind: 'bad', bad: { line, problem: `${record.length} fields, but the header has ${width} (an unquoted comma?)` } };
  }
  const v: Partial<Record<PersonColumn, string | null>> = {};
  for (let i = 0; i < header.length; i++) {
    const col = header[i];
    if (col === undefined) continue;
    const cell = record[i]?.trim() ?? '';
    v[col] = cell === '' ? null : cell;
  }
  const problems: string[] = [];
  const email = v.email ?? null;
  if (email === null) problems.push('no email');
  else if (!EMAIL.test(email)) problems.push(`invalid email "${email}"`);
  const status = (v.status ?? 'active').toLowerCase();
  if (!isStatus(status)) problems.push(`unknown status "${v.status}" (expected ${PERSON_STATUSES.join(', ')})`);
  let changedAt: string | null = null;
  if (v.status_changed_at) {
    const t = statusTimestamp(v.status_changed_at);
    if ('problem' in t) problems.push(t.problem);
    else changedAt = t.iso;
  }
  const manager = v.manager_email ?? null;
  if (manager !== null && !EMAIL.test(manager)) problems.push(`invalid manager_email "${manager}"`);
  if (problems.length > 0) return { kind: 'bad', bad: { line, problem: problems.join('; ') } };
  return {
    kind: 'row',
    row: {
      line,
      email: email!,
      name: v.name ?? null,
      status: status as PersonStatus,
      status_changed_at: changedAt,
      department: v.department ?? null,
      manager_email: manager,
      external_id: v.external_id ?? null,
    },
  };
}
