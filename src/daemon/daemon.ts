// The long-running service of one connector: a sync at start, then on the cron
// schedule (each slot plus the connector's spread offset), never two at once;
// failures counted and retried with jittered backoff; an explicit shutdown that
// aborts the sync in flight within a grace period. The Supervisor runs one per
// connector, sharing their metrics and the process's sync slots. Its database is
// open and migrated before it starts (see database-wait.ts); the health server
// is the caller's.
import cron, { type ScheduledTask } from 'node-cron';
import type { Settings } from '../config.js';
import type { ConnectorTarget } from '../connectors/target.js';
import type { Database } from '../db/database.js';
import type { RunTrigger } from '../db/runs.js';
import { ConnectorDeletedError, errorMessage, SyncAbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import { notStarted } from '../sync/outcome.js';
import { runSync, type SyncOutcome } from '../sync/run-sync.js';
import { Metrics } from './metrics.js';
import type { JobResult } from '../fleet/dispatcher.js';
import type { NewJob, SyncJob } from '../fleet/sync-queue.js';
import { previousSlot } from './spread.js';
import type { SyncSlots } from './sync-slots.js';

const RETRY_BASE_MS = 5_000;
const RETRY_CAP_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;

export interface DaemonOptions {
  config: Settings;
  db: Database;
  log: Logger;
  /** The connector it serves; the environment's by default. */
  target?: ConnectorTarget;
  /** Its cron expression; SYNC_SCHEDULE by default. */
  schedule?: string;
  /** How long after each scheduled slot its sync begins: its spread offset. */
  offsetMs?: number;
  /** The process's sync slots (SYNC_CONCURRENCY); without them its syncs start at once. */
  slots?: SyncSlots;
  /** Shared metrics; its own otherwise. */
  metrics?: Metrics;
  /**
   * The connector's row as `run` registered it at start. Syncs refresh that row
   * and never create it again: once it is deleted (`delete --yes`), the daemon
   * stops syncing it. Without it, each sync registers the connector itself.
   */
  registeredId?: number;
  /** Called after each sync (the demo prints them). */
  onSyncFinished?: (outcome: SyncOutcome) => void;
  /**
   * In a fleet (a PostgreSQL server): due syncs go to the shared queue, keyed by
   * connector and slot, and whichever process is free runs them (runJob);
   * without it, this daemon runs its own.
   */
  queue?: { add(job: NewJob): void; readonly connectorId: number };
}

export class Daemon {
  private readonly log: Logger;
  /** Counters and gauges for /metrics. */
  readonly metrics: Metrics;
  private task: ScheduledTask | undefined;
  private inFlight: Promise<void> | undefined;
  private controller: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failuresInARow = 0;
  private stopping = false;
  private readonly delayed = new Set<NodeJS.Timeout>();
  /** The connector's name: its label in logs and metrics. */
  readonly name: string;
  private readonly schedule: string;
  /** Set when the connector was deleted under this daemon: no sync from then on. */
  private connectorDeleted = false;

  constructor(private readonly opts: DaemonOptions) {
    this.name = opts.target?.name ?? opts.config.connectorName;
    this.schedule = opts.schedule ?? opts.config.sync.schedule;
    this.log = opts.log.child({ component: 'daemon', connector: this.name });
    this.metrics = opts.metrics ?? new Metrics(opts.db, opts.log.child({ component: 'metrics' }));
  }

  /** Starts the sync of the slot that fired at `slot` after the connector's offset (a timer that stop() clears). */
  private later(slot: Date): void {
    const offset = this.opts.offsetMs ?? 0;
    const scheduledFor = new Date(slot.getTime() + offset);
    if (this.opts.queue) {
      this.enqueue(`${slot.toISOString()}`, scheduledFor, { trigger: 'schedule', scheduledFor: scheduledFor.toISOString(), since: scheduledFor.toISOString() });
      return;
    }
    if (offset <= 0) {
      void this.tick('schedule', scheduledFor);
      return;
    }
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      void this.tick('schedule', scheduledFor);
    }, offset);
    this.delayed.add(timer);
  }

  /** A job for the fleet's queue: `slotKey` names it, so every process queuing the same slot queues one job. */
  private enqueue(slotKey: string, startAfter: Date, data: Omit<SyncJob, 'connectorId' | 'attempt'> & { attempt?: number }): void {
    const queue = this.opts.queue!;
    queue.add({ key: `${queue.connectorId}@${slotKey}`, startAfter, data: { connectorId: queue.connectorId, attempt: 0, ...data } });
  }

  /**
   * Runs a job the fleet's queue handed this process: the sync unless one of
   * the connector ran since the job was due, and what the queue should do next.
   * A sync of the connector running elsewhere (its lock is held), or one this
   * process aborted to stop, hands the job back for a process to take later.
   */
  async runJob(job: SyncJob): Promise<JobResult> {
    this.failuresInARow = Math.max(this.failuresInARow, job.attempt);
    const outcome = await this.syncNow(job.trigger, {
      scheduledFor: job.scheduledFor ? new Date(job.scheduledFor) : undefined,
      unlessSyncedSince: new Date(job.since),
    });
    if (outcome?.result === 'busy') return { handBack: 'a sync of this connector is running' };
    if (this.stopping && (outcome === undefined || outcome.result === 'aborted')) return { handBack: 'the process stopped before the sync ended' };
    return 'complete';
  }

  /** Whether a sync runs now (the embedded database then answers /readyz late). */
  get syncInFlight(): boolean {
    return this.inFlight !== undefined;
  }

  async start(): Promise<void> {
    const { config } = this.opts;
    const cronLog = this.opts.log.child({ component: 'cron' });
    this.task = cron.schedule(this.schedule, (ctx) => this.later(ctx.date), {
      name: `sync:${this.name}`,
      timezone: config.sync.timezone,
      noOverlap: true,
      logger: {
        info: (m) => cronLog.debug(m),
        warn: (m) => cronLog.debug(m),
        error: (m) => cronLog.warn(String(m)),
        debug: (m) => cronLog.trace(String(m)),
      },
    });
    // A tick the process was too busy (or asleep) to fire is not run late: say so,
    // one line for a burst (an hour suspended on a seconds schedule is thousands of slots).
    // In a fleet the burst's latest slot is queued all the same: another process may have
    // queued it already (the same job), and a connector synced since skips it.
    let missed: Date[] = [];
    this.task.on('execution:missed', (c) => {
      if (missed.push(c.date) > 1) return;
      setImmediate(() => {
        const [first, last, n] = [missed[0]!, missed[missed.length - 1]!, missed.length];
        missed = [];
        if (this.opts.queue && !this.stopping) {
          this.later(last);
          cronLog.info({ missed: n, last: last.toISOString() }, 'scheduled slots passed while the process was busy; the latest is queued');
          return;
        }
        cronLog.warn(
          { missed: n, first: first.toISOString(), last: last.toISOString() },
          'scheduled syncs were missed: the process was busy or suspended at that time',
        );
      });
    });
    this.log.info(
      { schedule: this.schedule, timezone: config.sync.timezone, offsetMs: this.opts.offsetMs ?? 0, nextRun: this.task.getNextRun()?.toISOString() ?? null },
      'schedule started',
    );
    if (!config.sync.onStart) return;
    if (!this.opts.queue) {
      void this.tick('start');
      return;
    }
    // In a fleet every process queues the start sync of every connector; the one whose connector
    // was synced since its last slot was due finds that and does nothing. So a process joining a
    // running fleet adds no sync, and the first one back after an outage catches everyone up once.
    // A schedule whose last slot is further back than a search goes (a yearly one): synced within a month will do.
    // The connector's last due time is its last slot whose offset has passed.
    const offset = this.opts.offsetMs ?? 0;
    const last =
      previousSlot(this.schedule, config.sync.timezone, new Date(Date.now() - offset)) ?? new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 30 * DAY_MS);
    const since = new Date(last.getTime() + offset);
    this.enqueue(`start@${last.toISOString()}`, new Date(), { trigger: 'start', scheduledFor: null, since: since.toISOString() });
  }

  /** One sync; owns every error so nothing escapes the timer. Concurrent calls are skipped. */
  tick(trigger: RunTrigger, scheduledFor?: Date): Promise<void> {
    return this.syncNow(trigger, { scheduledFor }).then(() => undefined);
  }

  /**
   * Runs a sync now unless one is in flight (then: `busy`). Resolves with its
   * outcome, or undefined when it could not start; never rejects.
   */
  syncNow(trigger: RunTrigger, opts: { allowMassRemoval?: boolean; scheduledFor?: Date; unlessSyncedSince?: Date } = {}): Promise<SyncOutcome | undefined> {
    if (this.stopping || this.connectorDeleted) return Promise.resolve(undefined);
    if (this.inFlight) {
      this.log.info({ trigger }, 'previous sync still running; this one is skipped');
      return Promise.resolve(notStarted('busy', 'a sync of this connector is already running in this daemon', 0));
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const controller = new AbortController();
    this.controller = controller;
    const run = (async (): Promise<SyncOutcome | undefined> => {
      try {
        const sync = () => {
          if (opts.scheduledFor) this.metrics.startedLate(Date.now() - opts.scheduledFor.getTime());
          return runSync(
            {
              config: this.opts.config,
              db: this.opts.db,
              log: this.opts.log,
              hooks: this.metrics.hooks(this.name),
              registeredId: this.opts.registeredId,
              target: this.opts.target,
            },
            {
              trigger,
              signal: controller.signal,
              allowMassRemoval: opts.allowMassRemoval,
              scheduledFor: opts.scheduledFor,
              unlessSyncedSince: opts.unlessSyncedSince,
            },
          );
        };
        const outcome = await (this.opts.slots ? this.opts.slots.run(controller.signal, sync) : sync());
        if (outcome.result === 'busy') this.log.info({ trigger }, 'another process is syncing this connector; this sync waits its turn');
        if (outcome.result === 'skipped') this.log.debug({ trigger }, outcome.message);
        if (outcome.result === 'failed') this.failed(`sync failed (${outcome.errorKind}): ${outcome.message}`, outcome.errorKind !== 'auth');
        else if (outcome.result !== 'aborted' && outcome.result !== 'skipped') this.failuresInARow = 0;
        this.opts.onSyncFinished?.(outcome);
        return outcome;
      } catch (err) {
        if (err instanceof ConnectorDeletedError) {
          this.stopServingDeletedConnector(err);
          return undefined;
        }
        // Before a run could be recorded: database unreachable, key file unreadable, ...
        if (this.stopping && err instanceof SyncAbortedError) return undefined; // stopped while it waited for a slot
        this.metrics.tickFailed(this.name);
        this.failed(`sync could not start: ${errorMessage(err)}`, true);
        return undefined;
      } finally {
        this.inFlight = undefined;
        this.controller = undefined;
      }
    })();
    this.inFlight = run.then(() => undefined);
    return run;
  }

  /**
   * The connector was deleted under this daemon: it is not registered again,
   * the schedule stops, and this is said once. The process keeps running (health,
   * gateway) until it is stopped; a restart with the connector configured registers it anew.
   */
  private stopServingDeletedConnector(err: ConnectorDeletedError): void {
    if (this.connectorDeleted) return;
    this.connectorDeleted = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    void this.task?.stop();
    this.log.warn({ connector: err.connectorName, connectorId: err.connectorId }, `${err.message}: this daemon no longer syncs it`);
  }

  /** Counts a failure and, unless it waits on the operator, retries sooner than the schedule. */
  private failed(message: string, retry: boolean): void {
    this.failuresInARow++;
    if (!retry || this.stopping) {
      this.log.warn({ failuresInARow: this.failuresInARow }, message);
      return;
    }
    const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (this.failuresInARow - 1));
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    const next = this.task?.msToNext() ?? Infinity;
    if (delayMs >= next) {
      this.log.warn({ failuresInARow: this.failuresInARow }, `${message}; the next scheduled tick retries`);
      return;
    }
    this.log.warn({ failuresInARow: this.failuresInARow, retryInMs: delayMs }, `${message}; retrying with backoff`);
    if (this.opts.queue) {
      const at = new Date(Date.now() + delayMs);
      this.enqueue(`retry@${at.toISOString()}`, at, { trigger: 'schedule', scheduledFor: null, since: new Date().toISOString(), attempt: this.failuresInARow });
      return;
    }
    this.retryTimer = setTimeout(() => void this.tick('schedule'), delayMs);
    this.retryTimer.unref();
  }

  /**
   * Stops scheduling, aborts the sync in flight and waits for it up to the
   * grace period. The caller closes the health server and the database.
   * Returns false when the sync did not finish in time. `why` is what the
   * aborted sync's log line names (a shutdown unless said otherwise).
   */
  async stop(graceMs: number, why = 'shutdown'): Promise<boolean> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    await this.task?.destroy();
    let finished = true;
    if (this.inFlight) {
      this.log.info({ graceMs, why }, 'aborting the sync in flight');
      this.controller?.abort(why);
      let timer: NodeJS.Timeout | undefined;
      finished = await Promise.race([this.inFlight.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
      clearTimeout(timer);
      if (!finished) this.log.error({ graceMs }, 'the sync in flight did not stop within the grace period');
    }
    return finished;
  }
}
