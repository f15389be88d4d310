// `run`: the health server first; then the database opened, migrated and the
// environment's connector registered, retried with backoff while the database
// does not answer; then every connector (the environment's and the registered
// ones) synced on start and on schedule until SIGTERM/SIGINT, and the admin API.
import { readApiKey, type Config, type Settings } from '../config.js';
import { startAdminApi, startAdminSocket } from '../connectors/admin-api.js';
import { adminSocketPath } from '../connectors/admin-client.js';
import { environmentConnectorConfigured } from '../connectors/connect.js';
import { keyFingerprint, registerConnector, registration } from '../db/connectors.js';
import type { Database } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { describeDatabase, openDatabase } from '../db/open.js';
import { untilDatabaseReady } from '../daemon/database-wait.js';
import { HealthServer } from '../daemon/health.js';
import { startReadGateway } from '../daemon/local-gateway.js';
import { Supervisor } from '../daemon/supervisor.js';
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

/** One attempt at the database `run` needs: opened, migrated, the environment's connector (if any) registered; closed again if any step fails. */
async function openForRun(config: Settings, log: Logger, fingerprint: string | null): Promise<{ db: Database; connectorId: number | undefined }> {
  const db = await openDatabase(config, log);
  try {
    await migrate(db, log.child({ component: 'migrate' }), { queueUrl: config.database.url });
    if (!environmentConnectorConfigured(config)) return { db, connectorId: undefined };
    const connector = await registerConnector(db, registration(config, fingerprint));
    return { db, connectorId: connector.id };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export async function runCommand(ctx: CommandContext<Settings>, opts: { stopSignal?: Promise<unknown> } = {}): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run' });
  // Signals are ours from the first moment, so one during start-up still stops cleanly.
  const signal =
    opts.stopSignal ??
    firstSignal((sig) => {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    });
  const stopping = new AbortController();
  void signal.then(() => stopping.abort());
  let fingerprint: string | null = null;
  // The environment's connector exists only when TINES_TENANT_DOMAIN is set; without it, the registered ones are served.
  if (environmentConnectorConfigured(config)) {
    try {
      fingerprint = keyFingerprint(readApiKey(config));
    } catch (err) {
      log.warn(`cannot read the API key yet: ${errorMessage(err)}; each sync reads it again`);
    }
  }
  // The effective configuration: secrets are non-enumerable, so they are not in it; DATA_DIR only when it is used.
  const shown = config.database.url ? { ...config, database: {} } : config;
  log.info(
    { version: VERSION, config: shown, apiKeyFingerprint: fingerprint, database: describeDatabase(config), pid: process.pid },
    'tines-connector starting',
  );

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
  // The environment's connector is registered once, here: deleted under the daemon, it is not created again by its syncs.
  const supervisor = new Supervisor({ config, db, log: ctx.log, environmentId: ready.connectorId });
  health?.serve({ db, metrics: supervisor.metrics, syncInFlight: () => supervisor.syncInFlight });
  const gateway =
    db.backend === 'embedded'
      ? await startReadGateway(db, config.database.dataDir, log, {
          connectorName: config.connectorName,
          syncNow: (name, o) => supervisor.syncNow(name, 'manual', o),
          ...(environmentConnectorConfigured(config) ? { reconnectNow: () => reconnect(config as Config, db, ctx.log) } : {}),
        })
      : undefined;
  // Connectors are changed through the admin API: on ADMIN_PORT with ADMIN_TOKEN; for local commands on the embedded database, on its socket.
  const adminLog = ctx.log.child({ component: 'admin-api' });
  const control = supervisor.adminControl();
  const admins = [
    ...(config.admin.token ? [await startAdminApi({ config, db, log: adminLog, control, token: config.admin.token, port: config.admin.port })] : []),
    ...(db.backend === 'embedded' ? [await startAdminSocket({ config, db, log: adminLog, control, path: adminSocketPath(config.database.dataDir) })] : []),
  ];
  await supervisor.start();
  const why = await signal;
  log.info({ signal: why, graceMs: config.shutdownTimeoutMs }, 'shutting down');
  await Promise.all(admins.map((a) => a.close().catch(() => undefined)));
  const clean = await supervisor.stop(config.shutdownTimeoutMs);
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
