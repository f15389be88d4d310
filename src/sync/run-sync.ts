// The one entry to a sync of one connector: its key, its registration, the
// single-flight lock, the reconnect gate, the run row, and the outcome. What
// happens once the run row exists (the listing, the removal rules, the commit)
// is the run's: SyncRun in run.ts.
import type { Settings } from '../config.js';
import { isSealProblem } from '../connectors/registry.js';
import { environmentTarget, type ConnectorTarget } from '../connectors/target.js';
import { FAILING_AFTER, getConnector, keyFingerprint, reconnectPending, recordKeyUnreadable, registerTarget } from '../db/connectors.js';
import type { Database } from '../db/database.js';
import { abortStaleRuns, startRun, syncedSince, type RunTrigger } from '../db/runs.js';
import { ConnectorDeletedError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { notStarted, type SyncOutcome } from './outcome.js';
import { SyncRun } from './run.js';
import { dropStaging } from './staging.js';

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
  /** When the schedule made this sync due (its slot plus the connector's spread offset); recorded on the run. */
  scheduledFor?: Date;
  /** Does nothing (`skipped`) when a run of the connector started at or after this and finished: a queued slot already covered. */
  unlessSyncedSince?: Date;
}

export async function runSync(deps: SyncDeps, req: SyncRequest): Promise<SyncOutcome> {
  const outcome = await syncOnce(deps, req);
  deps.hooks?.onOutcome?.(outcome);
  return outcome;
}

async function syncOnce(deps: SyncDeps, req: SyncRequest): Promise<SyncOutcome> {
  const { config, db } = deps;
  const target = deps.target ?? environmentTarget(config);
  const started = performance.now();
  const log = deps.log.child({ component: 'sync', connector: target.name });
  let apiKey: string;
  try {
    apiKey = await target.readKey();
  } catch (err) {
    try {
      const failNow = isSealProblem(err);
      if (await recordKeyUnreadable(db, config, target, errorMessage(err), { registeredId: deps.registeredId, failNow })) {
        log.error(
          failNow
            ? `connector is now failing: ${errorMessage(err)}`
            : `connector is now failing (${FAILING_AFTER} or more syncs in a row could not run): ${errorMessage(err)}`,
        );
      }
    } catch (dbErr) {
      if (dbErr instanceof ConnectorDeletedError) throw dbErr;
      log.warn({ err: { message: errorMessage(dbErr) } }, 'could not record the failure on the connector');
    }
    throw err;
  }
  const fingerprint = keyFingerprint(apiKey);
  const registered = await registerTarget(db, config, target, fingerprint, { registeredId: deps.registeredId });

  return db.withSession(async (session) => {
    const lock = `tines-connector:sync:${registered.id}`;
    if (!(await session.tryLock(lock))) {
      log.info({ trigger: req.trigger }, 'another sync of this connector is running; this one does nothing');
      return notStarted('busy', `another sync of connector "${target.name}" is running`, performance.now() - started);
    }
    try {
      const stale = await abortStaleRuns(session, registered.id);
      if (stale > 0) log.warn({ runs: stale }, 'marked runs left running by a process that ended as aborted');
      if (req.unlessSyncedSince && (await syncedSince(session, registered.id, req.unlessSyncedSince))) {
        return notStarted('skipped', `connector "${target.name}" was synced since this sync was due`, performance.now() - started);
      }
      const connector = (await getConnector(session, target.name))!;
      const pending = reconnectPending(connector, fingerprint);
      if (pending) {
        log.warn({ trigger: req.trigger }, pending);
        return notStarted('reconnect_required', pending, performance.now() - started);
      }
      const runId = await startRun(session, connector.id, req.trigger, req.scheduledFor);
      const run = new SyncRun({ config, db, hooks: deps.hooks, target, session, connector, runId, apiKey, fingerprint, request: req, log, started });
      try {
        return await run.execute();
      } catch (err) {
        return await run.fail(err);
      } finally {
        await dropStaging(session, connector.id).catch(() => undefined);
      }
    } finally {
      await session.unlock(lock).catch(() => undefined);
    }
  });
}
