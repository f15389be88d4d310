// Plain-text tables for humans; --json for scripts.

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v).replace(/\s+/g, ' ');
}

/** Aligned columns with a header row; long cells are cut at `maxWidth`. */
export function formatTable(rows: readonly Record<string, unknown>[], columns?: readonly string[], maxWidth = 60): string {
  const cols = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  if (cols.length === 0) return '(no columns)';
  const cut = (s: string) => (s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s);
  const body = rows.map((r) => cols.map((c) => cut(cell(r[c]))));
  const widths = cols.map((c, i) => Math.max(c.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
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
