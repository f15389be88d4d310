// What a person reads: text with its control characters made visible, aligned
// tables, CSV, ages. Scripts read --json, which carries the data as stored.
import stringWidth from 'string-width';

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Control characters (C0, C1, DEL), line and paragraph separators, and every
 * format character (Unicode category Cf: the bidirectional marks, overrides
 * and isolates, zero-width spaces and joiners, the byte order mark, soft
 * hyphens): what lets text from Tines (a user's name) move the cursor, set a
 * terminal's title, fake a line of output, reorder what is shown or hide a
 * difference between two names.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/**
 * `text` as it may be shown to a person: every control character written as an
 * escape (`\n`, `\u001b`), so a terminal shows it instead of obeying it. Used
 * everywhere text is printed for a person; the data is not changed.
 */
export function visible(text: string): string {
  return text.replace(
    INVISIBLE,
    (c) =>
      NAMED[c] ??
      [...c]
        .map((u) => (u.codePointAt(0)! > 0xffff ? `\\u{${u.codePointAt(0)!.toString(16)}}` : `\\u${u.codePointAt(0)!.toString(16).padStart(4, '0')}`))
        .join(''),
  );
}

/** One value as a table cell (the text a person reads). */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return visible(JSON.stringify(v));
  return visible(String(v));
}

/** Aligned columns with a header row; every cell shown whole (`less -S` scrolls wide ones). */
export function formatTable(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const keys = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  return formatGrid(
    keys.map(visible),
    rows.map((r) => keys.map((c) => cell(r[c]))),
  );
}

/** How many terminal columns `text` takes: a CJK character or an emoji two, a combining mark none. */
export function displayWidth(text: string): number {
  // Plain ASCII (most cells) is its length; string-width only for the rest.
  return /^[\x20-\x7e]*$/.test(text) ? text.length : stringWidth(text);
}

/**
 * Cells already made visible, aligned under their header by display width.
 * The widths are found with a loop: a spread of every row into Math.max
 * overflows the call stack past about 125,000 rows.
 */
export function formatGrid(header: readonly string[], body: readonly (readonly string[])[]): string {
  if (header.length === 0) return '(no columns)';
  const widths = header.map(displayWidth);
  for (const row of body) {
    for (let i = 0; i < widths.length; i++) {
      const w = displayWidth(row[i] ?? '');
      if (w > widths[i]!) widths[i] = w;
    }
  }
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c + ' '.repeat(widths[i]! - displayWidth(c)))
      .join('  ')
      .trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w)))];
  for (const row of body) out.push(line(row));
  return out.join('\n');
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

/** PostgreSQL type oids `query` converts for scripts (see scriptValue). */
export const PG_TYPE = { bytea: 17, date: 1082, timestamp: 1114, timestamptz: 1184 } as const;

/**
 * One value of `query`'s --json or --format csv, by its column's type (never by
 * what the text looks like): a timestamptz in isoTimestamp's form; a timestamp
 * without time zone as ISO 8601 without a zone (`2026-01-01T10:00:00.000`: none
 * is stored); everything else as the backend gave it (a date `2026-12-01`, a
 * bytea `\x78`, both kept as PostgreSQL's text).
 */
export function scriptValue(v: unknown, typeId: number): unknown {
  if (typeof v !== 'string') return v;
  if (typeId === PG_TYPE.timestamptz) return isoTimestamp(v);
  if (typeId === PG_TYPE.timestamp) return isoLocalTimestamp(v);
  return v;
}

const LOCAL_TIMESTAMP = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?( BC)?$/;

/** PostgreSQL's `2026-01-01 10:00:00.5` as `2026-01-01T10:00:00.500` (microseconds kept); `infinity` and BC dates as they are. */
export function isoLocalTimestamp(text: string): string {
  const m = LOCAL_TIMESTAMP.exec(text);
  if (!m || m[4]) return text;
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0')}`;
}
