// `sync [--allow-mass-removal] [--json]`: migrate, one sync now, print its summary.
import { isatty } from 'node:tty';
import { exitCodeFor, runSync, type SyncOutcome } from '../sync/run-sync.js';
import { syncThroughGateway } from '../daemon/local-gateway.js';
import { DataDirBusyError } from '../errors.js';
import { jsonDocument, visible } from './format.js';
import type { Settings } from '../config.js';
import { targetByName } from '../connectors/registry.js';
import { ConnectorNotFoundError } from '../errors.js';
import type { CommandContext } from './context.js';

/**
 * The summary of a sync. `errorLogged`: the error has just been written to the
 * same terminal by the sync's own log line (stderr), so the summary names its
 * kind only instead of repeating it.
 */
export function describeOutcome(o: SyncOutcome, opts: { errorLogged?: boolean } = {}): string {
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
  if (o.message && opts.errorLogged && o.result !== 'succeeded') lines.push(`  ${o.errorKind ? `${o.errorKind}: ` : ''}see the error above`);
  else if (o.message) lines.push(`  ${o.errorKind ? `${o.errorKind}: ` : ''}${o.message}`);
  if (o.errorKind === 'network') lines.push('  (is TINES_TENANT_DOMAIN right, and is the tenant reachable from here?)');
  return lines.map(visible).join('\n');
}

/** The connector `--connector NAME` names, else the environment's (CONNECTOR_NAME). */
export function connectorNameOf(ctx: CommandContext): string {
  return typeof ctx.flags.connector === 'string' ? ctx.flags.connector : ctx.config.connectorName;
}

/** `sync [--connector NAME]`: the environment's connector (Config) by default, a registered one by name. */
export async function syncCommand(ctx: CommandContext<Settings>): Promise<number> {
  const allowMassRemoval = ctx.flags['allow-mass-removal'] === true;
  const name = connectorNameOf(ctx);
  let db;
  try {
    db = await ctx.db();
  } catch (err) {
    // The embedded database is held by a running daemon: it runs the sync for us.
    if (!(err instanceof DataDirBusyError)) throw err;
    const outcome = await syncThroughGateway(ctx.config.database.dataDir, name, allowMassRemoval);
    if (!outcome) throw err;
    ctx.out(ctx.flags.json ? jsonDocument(outcome) : `${describeOutcome(outcome)}\n  (run by the daemon that holds ${ctx.config.database.dataDir})`);
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
    const outcome = await runSync({ config: ctx.config, db, log: ctx.log, target }, { trigger: 'manual', allowMassRemoval, signal: controller.signal });
    // A person at a terminal (text logs on stderr, the summary on stdout, both on screen) reads the error once.
    const errorLogged = ctx.config.logFormat !== 'json' && isatty(1) && isatty(2) && ctx.log.isLevelEnabled('warn');
    ctx.out(ctx.flags.json ? jsonDocument(outcome) : describeOutcome(outcome, { errorLogged }));
    return exitCodeFor(outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
