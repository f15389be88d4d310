// `run`: migrate, register, sync on start and on schedule until SIGTERM/SIGINT.
import { readApiKey, type Config } from '../config.js';
import { keyFingerprint, registerConnector } from '../db/connectors.js';
import { Daemon } from '../daemon/daemon.js';
import { startReadGateway } from '../daemon/local-gateway.js';
import { VERSION } from '../version.js';
import { errorMessage } from '../errors.js';
import { registration } from '../sync/run-sync.js';
import type { CommandContext } from './context.js';
import { reconnect } from './reconnect.js';

/** Resolves with the first SIGTERM/SIGINT; a second one exits at once. */
function firstSignal(onSecond: (sig: NodeJS.Signals) => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
      process.once('SIGTERM', onSecond);
      process.once('SIGINT', onSecond);
      resolve(sig);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

export async function runCommand(ctx: CommandContext<Config>, opts: { stopSignal?: Promise<unknown> } = {}): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run' });
  // Signals are ours from the first moment, so one during start-up still stops cleanly.
  const signal = opts.stopSignal ?? firstSignal((sig) => {
    log.warn({ signal: sig }, 'second signal: exiting now');
    process.exit(1);
  });
  const db = await ctx.db();
  let fingerprint: string | null = null;
  try {
    fingerprint = keyFingerprint(readApiKey(config));
  } catch (err) {
    log.warn(`cannot read the API key yet: ${errorMessage(err)}; each sync reads it again`);
  }
  await registerConnector(db, registration(config, fingerprint));
  // The effective configuration: secrets are non-enumerable, so they are not in it; DATA_DIR only when it is used.
  const shown = db.backend === 'embedded' ? config : { ...config, database: {} };
  log.info({ version: VERSION, config: shown, apiKeyFingerprint: fingerprint, database: db.description, pid: process.pid }, 'tines-connector starting');

  if (config.database.embeddedPgPort && db.backend === 'embedded') {
    log.warn(
      { embeddedPgPort: config.database.embeddedPgPort },
      'EMBEDDED_PG_PORT is not served: the embedded database has one session, and a psql client on it could capture the ' +
        "daemon's own statements. Use `tines-connector query`, which reaches this daemon, or a PostgreSQL server with DATABASE_URL.",
    );
  }
  const daemon = new Daemon({ config, db, log: ctx.log });
  const gateway =
    db.backend === 'embedded'
      ? await startReadGateway(db, config.database.dataDir, log, {
          connectorName: config.connectorName,
          syncNow: (o) => daemon.syncNow('manual', o),
          reconnectNow: () => reconnect(config, db, ctx.log),
        })
      : undefined;
  await daemon.start();
  const why = await signal;
  log.info({ signal: why, graceMs: config.shutdownTimeoutMs }, 'shutting down');
  const clean = await daemon.stop(config.shutdownTimeoutMs);
  await gateway?.stop().catch(() => undefined);
  if (!clean) {
    // A sync still holds a connection, and closing the pool would wait for it: exit now.
    // The run it leaves `running` is marked aborted by the next sync.
    log.error('exiting with the sync unfinished; its run is marked aborted at the next start');
    process.exit(1);
  }
  log.info('stopped cleanly');
  return 0;
}
