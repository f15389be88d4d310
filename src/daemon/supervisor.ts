// One process, many connectors: a Daemon per connector (the environment's, when
// TINES_TENANT_DOMAIN is set, and every registered one), each on its own
// schedule with its own state, failure count and retries, and its own Tines
// client (so its own rate limiter) per sync; the process's SyncSlots bound how
// many sync at once. The set follows the registry without a restart: on the
// server a NOTIFY (registry-watch.ts), on the embedded database the admin API in
// this process; a slow poll catches anything missed. /readyz (run's health server)
// is about the process and its database; per-connector health is in /metrics and `status`.
//
// *When* a connector is due is each Daemon's schedule plus its spread offset
// (spread.ts); *who* runs it is, on the embedded database, this process's
// SyncSlots, and on a PostgreSQL server the fleet (fleet/fleet.ts): every `run`
// process queues every connector's slots in a shared job queue, and whichever
// process is free runs each once.
import type { Settings } from '../config.js';
import type { AdminControl } from '../connectors/admin-api.js';
import { environmentConnectorConfigured } from '../connectors/connect.js';
import { listRegistered, registeredTarget, type RegisteredConnector } from '../connectors/registry.js';
import type { Database } from '../db/database.js';
import type { RunTrigger } from '../db/runs.js';
import { pruneRuns } from '../db/run-retention.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { SyncOutcome } from '../sync/outcome.js';
import { Fleet } from '../fleet/fleet.js';
import type { JobResult } from '../fleet/dispatcher.js';
import type { QueuedJob } from '../fleet/sync-queue.js';
import { Daemon } from './daemon.js';
import { Metrics } from './metrics.js';
import { watchRegistry } from './registry-watch.js';
import { schedulePeriodMs, spreadOffsetMs } from './spread.js';
import { SyncSlots } from './sync-slots.js';

/** A reload now and then even without a notification: a lost NOTIFY costs at most this. */
const POLL_MS = 30_000;
const RETENTION_EVERY_MS = 3600_000;

export interface SupervisorOptions {
  config: Settings;
  db: Database;
  log: Logger;
  /** The environment's connector's row, registered by `run` at start (see DaemonOptions.registeredId). */
  environmentId?: number;
  /** Called after each sync of any connector (the demo prints them). */
  onSyncFinished?: (connector: string, outcome: SyncOutcome) => void;
}

interface Served {
  daemon: Daemon;
  /** Its row in `connectors` (the queue's jobs name it). */
  id: number | undefined;
  /** What it was started with: a change (re-created under the name, new schedule or tenant) restarts it. */
  definition: string;
}

export class Supervisor {
  readonly metrics: Metrics;
  readonly slots: SyncSlots;
  /** On a PostgreSQL server: the shared queue every `run` process takes its syncs from. */
  readonly fleet: Fleet | undefined;
  private readonly log: Logger;
  private readonly served = new Map<string, Served>();
  private watch: { stop(): Promise<void> } | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private stopping = false;
  private readonly periods = new Map<string, number>();

  constructor(private readonly opts: SupervisorOptions) {
    this.log = opts.log.child({ component: 'supervisor' });
    this.metrics = new Metrics(opts.db, opts.log.child({ component: 'metrics' }));
    // On the embedded database too: each connector's sync stages in tables of its
    // own (stageTables), and its final transaction excludes every other statement.
    this.slots = new SyncSlots(opts.config.registry.syncConcurrency);
    const url = opts.config.database.url;
    if (url && opts.db.backend === 'postgres') {
      this.fleet = new Fleet({
        url,
        concurrency: opts.config.registry.syncConcurrency,
        stallSeconds: opts.config.registry.stallSeconds,
        log: opts.log,
        runJob: (job) => this.runJob(job),
      });
      const fleet = this.fleet;
      this.metrics.watchSlots({
        get busy() {
          return fleet.dispatcher.busy;
        },
        queued: 0,
      });
      this.metrics.watchQueue(() => fleet.dueDepth());
    } else {
      this.metrics.watchSlots(this.slots);
    }
  }

  /** Whether any sync runs (or waits for a slot) now. */
  get syncInFlight(): boolean {
    for (const s of this.served.values()) if (s.daemon.syncInFlight) return true;
    return false;
  }

  async start(): Promise<void> {
    const { config } = this.opts;
    this.fleet?.start();
    if (environmentConnectorConfigured(config)) {
      // The environment's connector keeps its schedule exactly: no offset.
      const id = this.opts.environmentId;
      await this.serve(config.connectorName, 'env', id, new Daemon({ ...this.daemonOptions(config.connectorName, id), registeredId: id }));
    }
    await this.reload();
    this.fleet?.takeJobs();
    if (config.database.url) this.watch = watchRegistry(config.database.url, this.opts.log.child({ component: 'registry-watch' }), () => this.changed());
    this.pollTimer = setInterval(() => this.changed(), POLL_MS);
    this.pollTimer.unref();
    void this.prune();
    this.retentionTimer = setInterval(() => void this.prune(), RETENTION_EVERY_MS);
    this.retentionTimer.unref();
    if (this.served.size === 0) this.log.info('no connector yet: waiting for one to be added (`tines-connector connectors add`, or POST /api/connectors)');
  }

  private daemonOptions(name: string, id: number | undefined) {
    const { config, db, log } = this.opts;
    const fleet = this.fleet;
    return {
      config,
      db,
      log,
      metrics: this.metrics,
      onSyncFinished: (o: SyncOutcome) => this.opts.onSyncFinished?.(name, o),
      ...(fleet && id !== undefined ? { queue: { connectorId: id, add: fleet.add.bind(fleet) } } : { slots: this.slots }),
    };
  }

  private async serve(name: string, definition: string, id: number | undefined, daemon: Daemon): Promise<void> {
    this.served.set(name, { daemon, id, definition });
    await daemon.start();
  }

  /** A job the fleet's queue gave this process: run by the connector's daemon here. */
  private async runJob(job: QueuedJob): Promise<JobResult> {
    const { connectorId } = job.data;
    for (const s of this.served.values()) if (s.id === connectorId) return s.daemon.runJob(job.data);
    // Not served here: removed (the job has nothing left to do), or added a moment ago and not loaded yet.
    let exists: boolean;
    try {
      exists = (await this.opts.db.query('SELECT 1 FROM connectors WHERE id = $1', [connectorId])).rows.length > 0;
    } catch {
      return { handBack: 'cannot read its connector now' };
    }
    if (!exists) return 'complete';
    this.changed();
    return { handBack: 'its connector is not loaded in this process yet' };
  }

  /** Something in the registry changed (or may have): reload soon; never two reloads at once. */
  changed(): void {
    if (this.stopping) return;
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    void this.reload();
  }

  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        do {
          this.reloadAgain = false;
          await this.reconcile(await listRegistered(this.opts.db));
        } while (this.reloadAgain && !this.stopping);
      } catch (err) {
        this.log.warn({ err: { message: errorMessage(err) } }, 'cannot read the registered connectors; the next reload tries again');
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  private async reconcile(rows: RegisteredConnector[]): Promise<void> {
    const { config } = this.opts;
    const wanted = new Map(rows.map((r) => [r.name, r]));
    const definitionOf = (r: RegisteredConnector) => `registry:${r.id}:${r.tenant_domain}:${r.schedule ?? ''}`;
    // Gone or changed: stopped (a sync in flight is aborted; its connector's rows went with the connector).
    const stops: Promise<void>[] = [];
    for (const [name, s] of this.served) {
      if (s.definition === 'env') continue;
      const r = wanted.get(name);
      if (r && definitionOf(r) === s.definition) continue;
      this.served.delete(name);
      this.log.info({ connector: name }, r ? 'connector changed: restarting its schedule' : 'connector removed: no longer served');
      stops.push(s.daemon.stop(config.shutdownTimeoutMs, r ? 'its connector changed' : 'its connector was removed').then(() => undefined));
    }
    await Promise.all(stops);
    if (this.stopping) return;
    for (const r of rows) {
      if (this.served.has(r.name)) continue;
      const schedule = r.schedule ?? config.sync.schedule;
      const offsetMs = spreadOffsetMs(r.id, config.registry.spreadSeconds, this.periodOf(schedule));
      const daemon = new Daemon({ ...this.daemonOptions(r.name, r.id), target: registeredTarget(this.opts.db, config, r), schedule, offsetMs });
      this.log.info({ connector: r.name, tenant: r.tenant_domain, schedule, offsetMs }, 'serving connector');
      await this.serve(r.name, definitionOf(r), r.id, daemon);
    }
  }

  private periodOf(schedule: string): number {
    let p = this.periods.get(schedule);
    if (p === undefined) this.periods.set(schedule, (p = schedulePeriodMs(schedule, this.opts.config.sync.timezone)));
    return p;
  }

  private async prune(): Promise<void> {
    try {
      const n = await pruneRuns(this.opts.db, this.opts.config.registry.runsRetentionDays);
      if (n > 0) this.log.info({ deleted: n, retentionDays: this.opts.config.registry.runsRetentionDays }, 'deleted sync runs older than RUNS_RETENTION_DAYS');
    } catch (err) {
      this.log.warn({ err: { message: errorMessage(err) } }, 'cannot delete old sync runs; the next hourly pass tries again');
    }
  }

  /** A sync of the named connector now (the gateway's `sync`); undefined when it is not served here or could not start. */
  syncNow(name: string, trigger: RunTrigger, opts: { allowMassRemoval?: boolean } = {}): Promise<SyncOutcome | undefined> | undefined {
    return this.served.get(name)?.daemon.syncNow(trigger, opts);
  }

  /** What the admin API asks of the process. */
  adminControl(): AdminControl {
    return {
      syncNow: (name) => {
        const s = this.served.get(name);
        if (!s) return 'unknown';
        if (s.daemon.syncInFlight) return 'busy';
        void s.daemon.syncNow('manual');
        return 'accepted';
      },
      changed: () => this.changed(),
    };
  }

  /**
   * Stops every schedule and aborts every sync in flight, waiting for them up
   * to the grace period. The caller closes the health server and the database. Returns false when a sync did not finish in time.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    clearInterval(this.retentionTimer);
    await this.watch?.stop();
    await this.reloading;
    // In a fleet: no more jobs taken or queued; the syncs in flight are aborted and their jobs handed back to the others.
    this.fleet?.stopTaking();
    const started = Date.now();
    const results = await Promise.all([...this.served.values()].map((s) => s.daemon.stop(graceMs)));
    const handedBack = (await this.fleet?.stop(Math.max(1000, graceMs - (Date.now() - started)))) ?? true;
    return results.every(Boolean) && handedBack;
  }
}
