// `run`: the health server first; then the database opened, migrated and the
// connector registered, retried with backoff while the database does not
// answer; then syncs on start and on schedule until SIGTERM/SIGINT.
import { readApiKey, type Config } from '../config.js';
import { keyFingerprint, registerConnector, registration } from '../db/connectors.js';
import type { Database } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { describeDatabase, openDatabase } from '../db/open.js';
import { Daemon } from '../daemon/daemon.js';
import { untilDatabaseReady } from '../daemon/database-wait.js';
import { HealthServer } from '../daemon/health.js';
import { startReadGateway } from '../daemon/local-gateway.js';
import { VERSION } from '../version.js';
import { CommandRefusal, errorMessage } from '../errors.js';
import { dataDirUnusable, explainFailure } from './explain.js';
import type { Logger } from '../log.js';
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

/** One attempt at the database `run` needs: opened, migrated, the connector registered; closed again if any step fails. */
async function openForRun(config: Config, log: Logger, fingerprint: string | null): Promise<{ db: Database; connectorId: number }> {
  const db = await openDatabase(config, log);
  try {
    await migrate(db, log.child({ component: 'migrate' }));
    const connector = await registerConnector(db, registration(config, fingerprint));
    return { db, connectorId: connector.id };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export async function runCommand(ctx: CommandContext<Config>, opts: { stopSignal?: Promise<unknown> } = {}): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run' });
  // Signals are ours from the first moment, so one during start-up still stops cleanly.
  const signal = opts.stopSignal ?? firstSignal((sig) => {
    log.warn({ signal: sig }, 'second signal: exiting now');
    process.exit(1);
  });
  const stopping = new AbortController();
  void signal.then(() => stopping.abort());
  let fingerprint: string | null = null;
  try {
    fingerprint = keyFingerprint(readApiKey(config));
  } catch (err) {
    log.warn(`cannot read the API key yet: ${errorMessage(err)}; each sync reads it again`);
  }
  // The effective configuration: secrets are non-enumerable, so they are not in it; DATA_DIR only when it is used.
  const shown = config.database.url ? { ...config, database: {} } : config;
  log.info({ version: VERSION, config: shown, apiKeyFingerprint: fingerprint, database: describeDatabase(config), pid: process.pid }, 'tines-connector starting');

  // Up before the database, so /healthz answers (and /readyz says why not ready) while it is reached.
  const health = config.healthPort > 0 ? await HealthServer.listen(config.healthPort, ctx.log.child({ component: 'health' })) : undefined;
  // `run` owns this database (not ctx.db(), which opens once and gives up at the first error).
  const ready = await untilDatabaseReady(
    () => openForRun(config, ctx.log, fingerprint),
    ({ db }) => db.close(),
    {
      signal: stopping.signal,
      log,
      onWaiting: (reason) => health?.starting(reason),
      explain: (err) => explainFailure(err, config),
      // Waiting does not make a DATA_DIR writable (a volume is mounted before the process starts): exit 2, saying whose it must be.
      permanent: (err) => dataDirUnusable(err, config),
    },
  ).catch(async (err: unknown) => {
    await health?.close();
    if (dataDirUnusable(err, config)) throw new CommandRefusal(explainFailure(err, config), 2);
    throw err;
  });
  if (!ready) {
    log.info({ signal: await signal }, 'stopped while waiting for the database');
    await health?.close();
    return 0;
  }
  const { db } = ready;

  if (config.database.embeddedPgPort && db.backend === 'embedded') {
    log.warn(
      { embeddedPgPort: config.database.embeddedPgPort },
      'EMBEDDED_PG_PORT is not served: the embedded database has one session, and a psql client on it could capture the ' +
        "daemon's own statements. Use `tines-connector query`, which reaches this daemon, or a PostgreSQL server with DATABASE_URL.",
    );
  }
  // Registered once, here: a connector deleted under the daemon is not created again by its syncs.
  const daemon = new Daemon({ config, db, log: ctx.log, registeredId: ready.connectorId });
  health?.serve({ db, metrics: daemon.metrics, syncInFlight: () => daemon.syncInFlight });
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
  await health?.close();
  await gateway?.stop().catch(() => undefined);
  if (!clean) {
    // A sync still holds a connection, and closing the pool would wait for it: exit now.
    // The run it leaves `running` is marked aborted by the next sync.
    log.error('exiting with the sync unfinished; its run is marked aborted at the next start');
    process.exit(1);
  }
  await db.close();
  log.info('stopped cleanly');
  return 0;
}
