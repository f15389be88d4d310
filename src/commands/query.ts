// `query "<SQL>" [--format table|json|csv] [--json]`: one read-only statement against the configured database.
import { readOnly, type CommandContext } from './context.js';
import { explainFailure } from './explain.js';
import { formatCsv, formatTable, jsonRows } from './format.js';

const FORMATS = ['table', 'json', 'csv'] as const;
type Format = (typeof FORMATS)[number];

export async function queryCommand(ctx: CommandContext): Promise<number> {
  const asked = ctx.flags.format;
  if (asked !== undefined && !FORMATS.includes(asked as Format)) {
    process.stderr.write(`tines-connector query: --format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(asked)}\n`);
    return 2;
  }
  if (ctx.flags.json && asked !== undefined && asked !== 'json') {
    process.stderr.write(`tines-connector query: --json and --format ${String(asked)} contradict each other\n`);
    return 2;
  }
  const format: Format = ctx.flags.json ? 'json' : ((asked as Format | undefined) ?? 'table');
  const sql = ctx.positionals[0]!;
  let rows: Record<string, unknown>[];
  try {
    rows = await readOnly(ctx, sql);
  } catch (err) {
    process.stderr.write(`query failed: ${explainFailure(err, ctx.config)}\n`);
    return 1;
  }
  if (format === 'json') {
    ctx.out(jsonRows(rows));
    return 0;
  }
  const columns = rows.length > 0 ? undefined : await columnsOf(ctx, sql);
  if (format === 'csv') process.stdout.write(formatCsv(rows, columns));
  else ctx.out(`${formatTable(rows, columns)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`);
  return 0;
}

/**
 * The column names of a statement that returned no rows, so an empty table or
 * CSV still has its header: the statement as a subquery, LEFT JOINed to one
 * row, answers one row of nulls under its names (LIMIT 0: it is planned, not
 * run again). Only SELECT-like statements can be subqueries; for the rest (SHOW,
 * EXPLAIN always answer rows) and on any error, no names.
 */
async function columnsOf(ctx: CommandContext, sql: string): Promise<string[] | undefined> {
  const body = sql.replace(/[\s;]+$/, '');
  try {
    const [row] = await readOnly(ctx, `SELECT q.* FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM (\n${body}\n) AS q0 LIMIT 0) AS q ON true`);
    return row ? Object.keys(row) : undefined;
  } catch {
    return undefined;
  }
}
