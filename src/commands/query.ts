// `query "<SQL>" [--json]`: one read-only statement against the configured database.
import { hasFlag, readOnly, type CommandContext } from './context.js';
import { formatTable } from './format.js';

export async function queryCommand(ctx: CommandContext): Promise<number> {
  // The statement is the argument that is not a flag (it may itself begin with a `--` comment).
  const sql = ctx.args.find((a) => a !== '--json');
  if (!sql) {
    ctx.out('usage: tines-connector query "<SQL>" [--json]');
    return 2;
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await readOnly(ctx, sql);
  } catch (err) {
    process.stderr.write(`query failed: ${(err as Error).message}\n`);
    return 1;
  }
  if (hasFlag(ctx.args, '--json')) ctx.out(JSON.stringify(rows));
  else ctx.out(`${formatTable(rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`);
  return 0;
}
