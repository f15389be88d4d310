// `sync [--allow-mass-removal] [--json]`: migrate, one sync now, print its summary.
import { exitCodeFor, runSync, type SyncOutcome } from '../sync/run-sync.js';
import { syncThroughGateway } from '../daemon/local-gateway.js';
import { DataDirBusyError } from '../errors.js';
import { targetByName } from '../connectors/registry.js';
import { ConnectorNotFoundError } from '../errors.js';
import { connectorArg, hasFlag, type CommandContext } from './context.js';

export function describeOutcome(o: SyncOutcome): string {
  const c = o.counts;
  const head =
    o.result === 'busy'
      ? 'sync skipped: another sync of this connector is running'
      : o.result === 'reconnect_required'
        ? 'sync not started: reconnect required'
        : `sync ${o.result}${o.runId ? ` (run ${o.runId})` : ''} in ${(o.durationMs / 1000).toFixed(1)} s`;
  const lines = [head];
  if (o.runId) {
    lines.push(
      `  pages ${o.pagesFetched}${o.pagesTotal ? ` of ${o.pagesTotal}` : ''}, users seen ${c.usersSeen}`,
      `  users: +${c.usersAdded} added, ~${c.usersUpdated} updated, -${c.usersRemoved} removed, ${c.usersRestored} restored`,
      `  memberships: +${c.membershipsAdded} added, ~${c.membershipsUpdated} updated, -${c.membershipsRemoved} removed`,
    );
    if (c.removalCandidates > 0) lines.push(`  missing from the listing: ${c.removalCandidates} (confirmation calls: ${c.confirmCalls})`);
  }
  if (o.message) lines.push(`  ${o.errorKind ? `${o.errorKind}: ` : ''}${o.message}`);
  return lines.join('\n');
}

export async function syncCommand(ctx: CommandContext): Promise<number> {
  const allowMassRemoval = hasFlag(ctx.args, '--allow-mass-removal');
  const name = connectorArg(ctx.args) ?? ctx.config.connectorName;
  let db;
  try {
    db = await ctx.db();
  } catch (err) {
    // The embedded database is held by a running daemon: it runs the sync for us.
    if (!(err instanceof DataDirBusyError)) throw err;
    const outcome = await syncThroughGateway(ctx.config.database.dataDir, name, allowMassRemoval);
    if (!outcome) throw err;
    ctx.out(hasFlag(ctx.args, '--json') ? JSON.stringify(outcome) : `${describeOutcome(outcome)}\n  (run by the daemon that holds ${ctx.config.database.dataDir})`);
    return exitCodeFor(outcome);
  }
  let target;
  try {
    target = await targetByName(db, ctx.config, name);
  } catch (err) {
    if (!(err instanceof ConnectorNotFoundError)) throw err;
    process.stderr.write(`tines-connector sync: ${err.message} (see \`tines-connector connectors list\`)\n`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const outcome = await runSync(
      { config: ctx.config, db, log: ctx.log, target },
      { trigger: 'manual', allowMassRemoval, signal: controller.signal },
    );
    ctx.out(hasFlag(ctx.args, '--json') ? JSON.stringify(outcome) : describeOutcome(outcome));
    return exitCodeFor(outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
