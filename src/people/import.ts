// `people import`: one directory CSV as its source's full snapshot, in one
// transaction. The rows stream into a staging table (COPY, in batches of about
// a megabyte), bad rows and duplicates are reported by line with nothing
// loaded, then one set-based merge: new people added, changed ones updated,
// people of the source missing from the file departed (behind the removal
// guard), returning ones active again.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Settings } from '../config.js';
import { CopyBuffer, escapeCopy, type Database, type Session } from '../db/database.js';
import type { Logger } from '../log.js';
import { guardHold } from '../sync/removal-rules.js';
import { DirectoryFileError, readDirectory, type BadRow, type DirectoryHeader, type DirectoryRow, type PersonColumn } from './directory-csv.js';

const STAGE = 'people_import_stage';
/** The staging table's loaded columns, in the order stageLine encodes them. */
const STAGE_COLUMNS = ['line', 'email', 'name', 'status', 'status_changed_at', 'department', 'manager_email', 'external_id'] as const;
const FLUSH_BYTES = 1 << 20;
const UNIQUE_VIOLATION = '23505';
/** Bad rows kept for the report; the rest are counted. */
export const BAD_ROWS_REPORTED = 1000;
/** The source of an import without --source. */
export const DEFAULT_SOURCE = 'directory';

export interface ImportOptions {
  /** The snapshot's source: only its people can be departed by it. */
  source: string;
  allowMassDeparture: boolean;
  /** Its REMOVAL_GUARD_PERCENT and REMOVAL_GUARD_MIN guard departures as they guard removals. */
  guard: Settings['sync'];
  log: Logger;
}

export interface ImportCounts {
  /** Records read (people in the file). */
  rows: number;
  added: number;
  /** Existing people whose row changed (returned ones included). */
  updated: number;
  unchanged: number;
  /** People of the source missing from the file, now departed. */
  departed: number;
  /** People who were departed and are in the file again. */
  returned: number;
  /** People the file lists who belonged to another source (or none) and now belong to this one. */
  claimed: number;
  /** The source's people not departed before the import. */
  present_before: number;
}

export type ImportOutcome =
  | ({ result: 'loaded' | 'held'; source: string; ignored_columns: string[]; message?: string } & ImportCounts)
  | { result: 'rejected'; source: string; ignored_columns: string[]; bad_rows: BadRow[]; bad_row_count: number };

/** Carries an outcome out of the transaction that must roll back. */
class RollBack extends Error {
  constructor(readonly outcome: ImportOutcome) {
    super(outcome.result);
  }
}

function stageLine(r: DirectoryRow): string {
  const t = (v: string | null) => (v === null ? '\\N' : escapeCopy(v));
  return `${r.line}\t${t(r.email)}\t${t(r.name)}\t${r.status}\t${t(r.status_changed_at)}\t${t(r.department)}\t${t(r.manager_email)}\t${t(r.external_id)}\n`;
}

/** Imports the CSV at `path`. Throws DirectoryFileError when the file cannot be read as a directory. */
export async function importPeopleFile(db: Database, path: string, opts: ImportOptions): Promise<ImportOutcome> {
  const input = createReadStream(path);
  // An unreadable file is the operator's to fix (exit 2), not a failure of the import.
  const opened = new Promise<void>((ok, fail) => {
    input.once('open', () => ok());
    input.once('error', (err) => fail(new DirectoryFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })));
  });
  await opened;
  return importPeople(db, input, opts);
}

/** Imports a directory CSV read from `input` as the full snapshot of `opts.source`. */
export async function importPeople(db: Database, input: Readable, opts: ImportOptions): Promise<ImportOutcome> {
  const started = performance.now();
  // Milliseconds from the start when the file was staged and checked (in the log line).
  const phases: { staged?: number; checked?: number } = {};
  try {
    const outcome = await db.withSession((s) =>
      s.transaction(async () => {
        const staged = await stage(s, input);
        phases.staged = Math.round(performance.now() - started);
        const bad = await indexOrDuplicates(s, staged.bad, staged.badCount);
        phases.checked = Math.round(performance.now() - started);
        const ignored = staged.header.ignored;
        if (bad.count > 0) {
          throw new RollBack({ result: 'rejected', source: opts.source, ignored_columns: ignored, bad_rows: bad.rows, bad_row_count: bad.count });
        }
        return merge(s, staged.header, opts);
      }),
    );
    opts.log.info({ ...outcome, durationMs: Math.round(performance.now() - started), phases }, 'people imported');
    return outcome;
  } catch (err) {
    if (!(err instanceof RollBack)) throw err;
    const { outcome } = err;
    if (outcome.result === 'rejected')
      opts.log.warn({ source: opts.source, badRows: outcome.bad_row_count }, 'people import rejected: bad rows, nothing loaded');
    else opts.log.warn({ ...outcome }, 'people import held: too many departures, nothing loaded');
    return outcome;
  }
}

/** Streams the file into the staging table; returns its header and the bad rows found on the way. */
async function stage(s: Session, input: Readable): Promise<{ header: DirectoryHeader; bad: BadRow[]; badCount: number }> {
  await s.exec(`DROP TABLE IF EXISTS ${STAGE};
    CREATE TEMP TABLE ${STAGE} (
      line integer NOT NULL, email text NOT NULL, email_key text GENERATED ALWAYS AS (lower(btrim(email))) STORED,
      name text, status text NOT NULL, status_changed_at timestamptz, department text, manager_email text, external_id text
    ) ON COMMIT DROP`);
  const buf = new CopyBuffer(FLUSH_BYTES + (64 << 10));
  const flush = async () => {
    if (buf.byteLength === 0) return;
    await s.copyText(STAGE, STAGE_COLUMNS, buf.bytes());
    buf.reset();
  };
  let header: DirectoryHeader | undefined;
  const bad: BadRow[] = [];
  let badCount = 0;
  for await (const item of readDirectory(input)) {
    if (item.kind === 'row') {
      buf.push(stageLine(item.row));
      if (buf.byteLength >= FLUSH_BYTES) await flush();
    } else if (item.kind === 'bad') {
      if (bad.length < BAD_ROWS_REPORTED) bad.push(item.bad);
      badCount++;
    } else header = item.header;
  }
  await flush();
  if (!header) throw new DirectoryFileError('the file has no header row');
  return { header, bad, badCount };
}

/**
 * Indexes the staged rows by email. When the unique index cannot be built, the
 * file has duplicate emails: each record after the first of an address joins
 * the bad rows, in line order. (Trying the index first spares a file without
 * duplicates, the usual case, a sort of every row.)
 */
async function indexOrDuplicates(s: Session, bad: BadRow[], badCount: number): Promise<{ rows: BadRow[]; count: number }> {
  await s.exec('SAVEPOINT people_stage_index');
  try {
    await s.exec(`CREATE UNIQUE INDEX ON ${STAGE} (email_key)`);
    await s.exec('RELEASE SAVEPOINT people_stage_index');
    return { rows: bad, count: badCount };
  } catch (err) {
    if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    await s.exec('ROLLBACK TO SAVEPOINT people_stage_index');
  }
  const r = await s.query<{ line: number; email: string; first_line: number; total: number }>(
    `SELECT line, email, first_line, count(*) OVER ()::int AS total
       FROM (SELECT line, email, min(line) OVER (PARTITION BY email_key) AS first_line FROM ${STAGE}) d
      WHERE line > first_line
      ORDER BY line
      LIMIT ${BAD_ROWS_REPORTED}`,
  );
  const dupes = r.rows.map((d) => ({ line: d.line, problem: `duplicate email "${d.email}" (first on line ${d.first_line})` }));
  const count = badCount + (r.rows[0]?.total ?? 0);
  return { rows: [...bad, ...dupes].sort((a, b) => a.line - b.line).slice(0, BAD_ROWS_REPORTED), count };
}

/** The staged snapshot into `people`: counts, departures, the guard, then one upsert. */
async function merge(s: Session, header: DirectoryHeader, opts: ImportOptions): Promise<ImportOutcome> {
  await s.exec(`ANALYZE ${STAGE}`);
  // Imports of any source one after the other; readers go on reading.
  await s.exec('LOCK TABLE people IN SHARE ROW EXCLUSIVE MODE');
  // Columns the file does not have are left as they are; status is always the file's (active when not given).
  const given = new Set<PersonColumn>(['email', 'status', ...header.columns]);
  const kept = (['name', 'department', 'manager_email', 'external_id'] as const).filter((c) => given.has(c));
  const compared = ['email', 'status', ...kept];
  // status_changed_at: the file's when it gives one; else kept while the status stays, now when it changes (or is new).
  const changedAt = (o: string, n: string) => `COALESCE(${n}.status_changed_at, CASE WHEN ${o}.status = ${n}.status THEN ${o}.status_changed_at END, now())`;
  const differs = (o: string, n: string) =>
    `(${[...compared.map((c) => `${o}.${c}`), `${o}.source`, `${o}.status_changed_at`].join(', ')}) IS DISTINCT FROM ` +
    `(${[...compared.map((c) => `${n}.${c}`), '$1::text', changedAt(o, n)].join(', ')})`;

  const c = await s.query<Omit<ImportCounts, 'departed' | 'unchanged'>>(
    `SELECT (SELECT count(*) FROM ${STAGE})::int AS rows,
            count(*) FILTER (WHERE p.email_key IS NULL)::int AS added,
            count(*) FILTER (WHERE p.email_key IS NOT NULL AND ${differs('p', 's')})::int AS updated,
            count(*) FILTER (WHERE p.status = 'departed' AND s.status <> 'departed')::int AS returned,
            count(*) FILTER (WHERE p.email_key IS NOT NULL AND p.source IS DISTINCT FROM $1::text)::int AS claimed,
            (SELECT count(*) FROM people x WHERE x.source = $1::text AND x.status <> 'departed')::int AS present_before
       FROM ${STAGE} s LEFT JOIN people p ON p.email_key = s.email_key`,
    [opts.source],
  );
  // Departures first: the statement counts them, and a held import rolls them back with everything else.
  const gone = await s.query(
    `UPDATE people p SET status = 'departed', status_changed_at = now(), updated_at = now()
      WHERE p.source = $1::text AND p.status <> 'departed'
        AND NOT EXISTS (SELECT 1 FROM ${STAGE} y WHERE y.email_key = p.email_key)`,
    [opts.source],
  );
  const row = c.rows[0]!;
  const counts: ImportCounts = { ...row, departed: gone.rowCount, unchanged: row.rows - row.added - row.updated };
  const base = { source: opts.source, ignored_columns: header.ignored, ...counts };
  const held = guardHold({ candidates: counts.departed, present: counts.present_before }, opts.guard, opts.allowMassDeparture);
  if (held) {
    const { removalGuardPercent: pct, removalGuardMin: min } = opts.guard;
    throw new RollBack({
      result: 'held',
      ...base,
      message:
        `${counts.departed} of the ${counts.present_before} people of source "${opts.source}" who are not departed are missing from the file, ` +
        `over the removal guard (more than ${pct}% and more than ${min}); nothing was loaded. ` +
        'If the file is complete and they really left, run the import again with --allow-mass-departure',
    });
  }

  const cols = ['email', 'status', ...kept];
  await s.query(
    `INSERT INTO people (${cols.join(', ')}, source, status_changed_at)
     SELECT ${cols.map((col) => `s.${col}`).join(', ')}, $1::text, ${changedAt('p', 's')} FROM ${STAGE} s
       LEFT JOIN people p ON p.email_key = s.email_key
      -- Only new and changed people: an unchanged row is not even tried (a no-change import writes nothing).
      WHERE p.email_key IS NULL OR ${differs('p', 's')}
     ON CONFLICT (email_key) DO UPDATE
        SET ${cols.map((col) => `${col} = EXCLUDED.${col}`).join(', ')}, source = EXCLUDED.source,
            status_changed_at = EXCLUDED.status_changed_at,
            updated_at = now()
      WHERE ${differs('people', 'EXCLUDED')}`,
    [opts.source],
  );
  return { result: 'loaded', ...base };
}
