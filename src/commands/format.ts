// What a person reads: text with its control characters made visible, aligned
// tables, CSV, ages. Scripts read --json, which carries the data as stored.
import { stringify } from 'csv-stringify/sync';

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * C0 and C1 control characters, DEL, line and paragraph separators, and the
 * bidirectional overrides and isolates: what lets text from Tines (a user's
 * name) move the cursor, set a terminal's title, fake a line of output or
 * reorder what is shown.
 */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` as it may be shown to a person: every control character written as an
 * escape (`\n`, `\u001b`), so a terminal shows it instead of obeying it. Used
 * everywhere text is printed for a person; the data is not changed.
 */
export function visible(text: string): string {
  return text.replace(INVISIBLE, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return visible(JSON.stringify(v));
  return visible(String(v));
}

/** Aligned columns with a header row; every cell shown whole (`less -S` scrolls wide ones). */
export function formatTable(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = (columns ?? (rows[0] ? Object.keys(rows[0]) : [])).map(visible);
  if (cols.length === 0) return '(no columns)';
  const keys = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  const body = rows.map((r) => keys.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** RFC 4180 CSV with a header row: values as stored (quoted, never escaped), timestamps in ISO 8601, JSON for objects. */
export function formatCsv(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  const value = (v: unknown) =>
    v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : typeof v === 'string' && PG_TEXT_TIMESTAMP.test(v) ? isoTimestamp(v) : String(v);
  return stringify([cols, ...rows.map((r) => cols.map((c) => value(r[c])))], { record_delimiter: 'unix' });
}

/** "3 minutes ago"-style age of an ISO or PostgreSQL timestamp. */
export function ago(ts: string | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  // PostgreSQL's text form: "2026-11-29 07:32:02.56+00" → ISO 8601.
  const iso = ts.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00');
  const ms = now - new Date(iso).getTime();
  if (Number.isNaN(ms)) return ts;
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)$/;

/**
 * A timestamp in PostgreSQL's text form (`2026-11-30 22:19:18.022+00`) or ISO
 * 8601 with any offset (`2026-11-30T22:19:33.005+00:00`), written in the one
 * form every --json output uses: UTC, `T`, at least milliseconds, `Z`
 * (`2026-11-30T22:19:18.022Z`); microseconds are kept. Anything else as it is.
 */
export function isoTimestamp(text: string): string {
  const m = TIMESTAMP.exec(text);
  if (!m) return text;
  const [, date, time, fraction = '', offset = 'Z'] = m;
  const zone = offset === 'Z' ? 'Z' : offset.length === 3 ? `${offset}:00` : offset.includes(':') ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const utc = new Date(`${date}T${time}${zone}`);
  if (Number.isNaN(utc.getTime())) return text;
  return `${utc.toISOString().slice(0, 19)}.${fraction.padEnd(3, '0')}Z`;
}

/**
 * One JSON document for scripts: the data as stored, with the timestamps the
 * connector writes (keys ending in `_at`) in isoTimestamp's one form.
 */
export function jsonDocument(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => (typeof v === 'string' && key.endsWith('_at') ? isoTimestamp(v) : v));
}

/** Rows of `query` for scripts: a column whose value is a timestamp in PostgreSQL's text form gets isoTimestamp's form; nothing else changes. */
export function jsonRows(rows: readonly Record<string, unknown>[]): string {
  return JSON.stringify(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && PG_TEXT_TIMESTAMP.test(v) ? isoTimestamp(v) : v]))));
}

/** How PostgreSQL writes a timestamptz or timestamp as text (both backends return them so). */
const PG_TEXT_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}(?::\d{2}){0,2})?$/;
