// Prometheus metrics (prom-client). Counters move as things happen; gauges of
// stored state are read from the database at scrape time. Every per-connector
// series has the label `connector` (its name). No secret is a label.
import client from 'prom-client';
import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import type { SyncHooks, SyncOutcome } from '../sync/run-sync.js';

interface ConnectorSnapshot {
  name: string;
  users: number;
  memberships: number;
  last_success: number | null;
  status: string;
  failures: number;
}

const STATUSES = ['active', 'reconnect_required', 'failing'];

export class Metrics {
  readonly registry = new client.Registry();
  private readonly runs: client.Counter<'connector' | 'status'>;
  private readonly duration: client.Histogram<'connector' | 'status'>;
  private readonly requests: client.Counter<'connector' | 'status'>;
  private readonly retries: client.Counter<'connector' | 'kind'>;
  private readonly tickFailures: client.Counter<'connector'>;
  private slots: { busy: number; queued: number } | undefined;
  private queueDepth: (() => Promise<number>) | undefined;
  private readonly lateness: client.Histogram;

  constructor(db: Database, log: Logger) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'tines_connector_' });
    this.runs = new client.Counter({ name: 'tines_connector_sync_runs_total', help: 'Sync runs by outcome', labelNames: ['connector', 'status'], registers });
    this.duration = new client.Histogram({
      name: 'tines_connector_sync_duration_seconds',
      help: 'Duration of sync runs',
      labelNames: ['connector', 'status'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.requests = new client.Counter({
      name: 'tines_connector_tines_requests_total',
      help: 'Tines API answers by HTTP status (0: no answer)',
      labelNames: ['connector', 'status'],
      registers,
    });
    this.retries = new client.Counter({
      name: 'tines_connector_tines_retries_total',
      help: 'Retried Tines requests by reason',
      labelNames: ['connector', 'kind'],
      registers,
    });
    this.tickFailures = new client.Counter({
      name: 'tines_connector_tick_errors_total',
      help: 'Scheduled ticks that failed before a run could be recorded',
      labelNames: ['connector'],
      registers,
    });

    // Stored state of every connector, read once per scrape; a database outage leaves the last values.
    let snapshot: ConnectorSnapshot[] | undefined;
    const refresh = async () => {
      try {
        const r = await db.query<ConnectorSnapshot>(
          `SELECT c.name,
                  (SELECT count(*) FROM tines_users u WHERE u.connector_id = c.id AND u.removed_at IS NULL)::int AS users,
                  (SELECT count(*) FROM team_memberships m WHERE m.connector_id = c.id AND m.removed_at IS NULL)::int AS memberships,
                  extract(epoch FROM c.last_success_at)::float8 AS last_success, c.status, c.consecutive_failures AS failures
             FROM connectors c ORDER BY c.name`,
        );
        snapshot = r.rows;
      } catch (err) {
        log.warn({ err: { message: (err as Error).message } }, 'metrics: cannot read connector state');
      }
    };
    let pending: Promise<void> | undefined;
    const once = () => (pending ??= refresh().finally(() => setTimeout(() => (pending = undefined), 1000)));
    const perConnector = (name: string, help: string, value: (c: ConnectorSnapshot) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['connector'],
        registers,
        async collect() {
          await once();
          if (!snapshot) return;
          this.reset(); // a removed connector's series goes with it
          for (const c of snapshot) this.set({ connector: c.name }, value(c));
        },
      });
    perConnector('tines_connector_users_present', 'Users present in Tines', (c) => c.users);
    perConnector('tines_connector_memberships_present', 'Team memberships present in Tines', (c) => c.memberships);
    perConnector('tines_connector_last_success_timestamp_seconds', 'Unix time of the last successful sync (0: never)', (c) => c.last_success ?? 0);
    perConnector('tines_connector_consecutive_failures', 'Failed syncs in a row', (c) => c.failures);
    new client.Gauge({
      name: 'tines_connector_status',
      help: 'Connector status: 1 for the current one',
      labelNames: ['connector', 'status'],
      registers,
      async collect() {
        await once();
        if (!snapshot) return;
        this.reset();
        for (const c of snapshot) for (const s of STATUSES) this.set({ connector: c.name, status: s }, c.status === s ? 1 : 0);
      },
    });
    const slots = () => this.slots;
    new client.Gauge({
      name: 'tines_connector_syncs_running',
      help: 'Syncs running in this process',
      registers,
      collect() {
        this.set(slots()?.busy ?? 0);
      },
    });
    const depth = () => this.queueDepth;
    new client.Gauge({
      name: 'tines_connector_queue_due_jobs',
      help: 'A fleet: syncs due in the shared queue and not yet taken by any process (0 on the embedded database)',
      registers,
      async collect() {
        const read = depth();
        if (!read) return this.set(0);
        try {
          this.set(await read());
        } catch (err) {
          log.warn({ err: { message: (err as Error).message } }, 'metrics: cannot read the sync queue');
        }
      },
    });
    this.lateness = new client.Histogram({
      name: 'tines_connector_schedule_lateness_seconds',
      help: 'How long after its slot plus spread offset a scheduled sync began, in this process',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    new client.Gauge({
      name: 'tines_connector_syncs_waiting',
      help: 'Due syncs waiting for one of the SYNC_CONCURRENCY slots',
      registers,
      collect() {
        this.set(slots()?.queued ?? 0);
      },
    });
  }

  /** In a fleet: the due jobs of the shared queue, read at scrape time. */
  watchQueue(depth: () => Promise<number>): void {
    this.queueDepth = depth;
  }

  /** A scheduled sync began `ms` after its slot plus the connector's spread offset. */
  startedLate(ms: number): void {
    this.lateness.observe(Math.max(0, ms) / 1000);
  }

  /** Where the running and waiting syncs are counted (the process's SyncSlots, or the fleet's dispatcher). */
  watchSlots(slots: { busy: number; queued: number }): void {
    this.slots = slots;
  }

  /** Hooks for runSync of one connector. */
  hooks(connector: string): SyncHooks {
    return {
      onOutcome: (o: SyncOutcome) => {
        this.runs.inc({ connector, status: o.result });
        if (o.runId !== null) this.duration.observe({ connector, status: o.result }, o.durationMs / 1000);
      },
      onResponse: (status) => this.requests.inc({ connector, status: String(status) }),
      onRetry: (kind) => this.retries.inc({ connector, kind }),
    };
  }

  tickFailed(connector: string): void {
    this.tickFailures.inc({ connector });
  }
}
