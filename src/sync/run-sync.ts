// One sync of one connector: registration, single flight, the reconnect gate,
// and the run's record; the run itself is in sync-run.ts.
import type { Settings } from '../config.js';
import { environmentTarget, type ConnectorTarget } from '../connectors/target.js';
import { isSealProblem } from '../connectors/registry.js';
import { FAILING_AFTER, getConnector, keyFingerprint, recordSyncFailure, registerConnector, setConnectorStatus, type ConnectorRow } from '../db/connectors.js';
import type { Database } from '../db/database.js';
import { abortStaleRuns, startRun, type RunTrigger } from '../db/runs.js';
import { ConnectorDeletedError, errorMessage, ReconnectRequiredError } from '../errors.js';
import type { Logger } from '../log.js';
import { notStarted, type SyncOutcome } from './outcome.js';
import { dropStaging } from './staging.js';
import { SyncRun } from './sync-run.js';

export { errorKindOf, exitCodeFor, type SyncOutcome, type SyncResult } from './outcome.js';

export interface SyncHooks {
  /** Called once per outcome (metrics). */
  onOutcome?: (outcome: SyncOutcome) => void;
  onResponse?: (status: number) => void;
  onRetry?: (kind: string) => void;
}

export interface SyncDeps {
  config: Settings;
  db: Database;
  log: Logger;
  hooks?: SyncHooks;
  /** The connector to sync; the environment's by default. */
  target?: ConnectorTarget;
  /** The connector's row as the daemon registered it at start: refreshed, never re-created (a deleted connector stays deleted). */
  registeredId?: number;
}

export interface SyncRequest {
  trigger: RunTrigger;
  /** Lifts the removal guard for this run (`sync --allow-mass-removal`). */
  allowMassRemoval?: boolean;
  signal?: AbortSignal;
}

export function registration(config: Settings, fingerprint: string | null, target: ConnectorTarget = environmentTarget(config)) {
  return {
    name: target.name,
    tenantDomain: target.tenantDomain,
    fingerprint,
    inactiveAfterDays: config.inactiveAfterDays,
    orgEmailDomains: config.orgEmailDomains,
  };
}

/**
 * The target's row: the environment's connector is registered (or refreshed,
 * with registeredId) from configuration; a registered one must exist, and is
 * never re-created: a sync of a connector removed meanwhile leaves no row
 * behind (ConnectorDeletedError).
 */
async function connectorRowOf(deps: SyncDeps, target: ConnectorTarget, fingerprint: string | null): Promise<ConnectorRow> {
  const { db, config } = deps;
  const row =
    target.source === 'env'
      ? await registerConnector(db, registration(config, fingerprint, target), { registeredId: deps.registeredId })
      : await getConnector(db, target.name);
  if (!row) throw new ConnectorDeletedError(target.name, deps.registeredId ?? 0);
  const source = (row as ConnectorRow & { source?: string }).source ?? 'env';
  if (source !== target.source) {
    throw new Error(`connector "${target.name}" is a ${source === 'registry' ? 'registered' : "the environment's"} connector in the database, not ${target.source === 'env' ? "the environment's" : 'a registered one'}: give CONNECTOR_NAME another name`);
  }
  return row;
}

export async function runSync(deps: SyncDeps, req: SyncRequest): Promise<SyncOutcome> {
  const outcome = await runSyncInner(deps, req);
  deps.hooks?.onOutcome?.(outcome);
  return outcome;
}

async function runSyncInner(deps: SyncDeps, req: SyncRequest): Promise<SyncOutcome> {
  const { config, db } = deps;
  const target = deps.target ?? environmentTarget(config);
  const started = performance.now();
  const log = deps.log.child({ component: 'sync', connector: target.name });
  let apiKey: string;
  try {
    apiKey = await target.readKey();
  } catch (err) {
    // No run can start (a secret mount gone), but it counts as a failed sync, so
    // the connector turns failing after a few and status and alerts show why.
    try {
      const connector = await connectorRowOf(deps, target, null);
      const justFailing = await recordSyncFailure(db, connector.id, null, errorMessage(err));
      // A sealed key that does not open (no or another master key) is no passing fault: failing now, with why.
      if (isSealProblem(err)) {
        const from = await setConnectorStatus(db, connector.id, 'failing', errorMessage(err));
        if (from !== undefined && from !== 'failing') log.error(`connector is now failing: ${errorMessage(err)}`);
      } else if (justFailing) {
        log.error(`connector is now failing (${FAILING_AFTER} or more syncs in a row could not run): ${errorMessage(err)}`);
      }
    } catch (dbErr) {
      if (dbErr instanceof ConnectorDeletedError) throw dbErr;
      log.warn({ err: { message: errorMessage(dbErr) } }, 'could not record the failure on the connector');
    }
    throw err;
  }
  const fingerprint = keyFingerprint(apiKey);
  const registered = await connectorRowOf(deps, target, fingerprint);

  return db.withSession(async (s) => {
    const lock = `tines-connector:sync:${registered.id}`;
    if (!(await s.tryLock(lock))) {
      log.info({ trigger: req.trigger }, 'another sync of this connector is running; this one does nothing');
      return notStarted('busy', `another sync of connector "${target.name}" is running`, performance.now() - started);
    }
    try {
      const stale = await abortStaleRuns(s, registered.id);
      if (stale > 0) log.warn({ runs: stale }, 'marked runs left running by a process that ended as aborted');
      const connector = (await getConnector(s, target.name))!;
      if (connector.status === 'reconnect_required' && connector.refused_key_fingerprint === fingerprint) {
        const message = new ReconnectRequiredError(target.name, connector.status_reason).message;
        log.warn({ trigger: req.trigger }, message);
        return notStarted('reconnect_required', message, performance.now() - started);
      }
      const runId = await startRun(s, connector.id, req.trigger);
      const run = new SyncRun({ ...deps, target }, s, connector, runId, apiKey, fingerprint, req, log, started);
      try {
        return await run.execute();
      } catch (err) {
        return await run.fail(err);
      } finally {
        await dropStaging(s).catch(() => undefined);
      }
    } finally {
      await s.unlock(lock).catch(() => undefined);
    }
  });
}
