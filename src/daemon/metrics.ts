// Prometheus metrics (prom-client). Counters move as things happen; gauges of
// stored state are read from the database at scrape time. No secret is a label.
import client from 'prom-client';
import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import type { SyncHooks, SyncOutcome } from '../sync/run-sync.js';

export class Metrics {
  readonly registry = new client.Registry();
  private readonly runs: client.Counter<'status'>;
  private readonly duration: client.Histogram<'status'>;
  private readonly requests: client.Counter<'status'>;
  private readonly retries: client.Counter<'kind'>;
  private readonly tickFailures: client.Counter;

  constructor(db: Database, connectorName: string, log: Logger) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'tines_connector_' });
    this.runs = new client.Counter({ name: 'tines_connector_sync_runs_total', help: 'Sync runs by outcome', labelNames: ['status'], registers });
    this.duration = new client.Histogram({
      name: 'tines_connector_sync_duration_seconds',
      help: 'Duration of sync runs',
      labelNames: ['status'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.requests = new client.Counter({ name: 'tines_connector_tines_requests_total', help: 'Tines API answers by HTTP status (0: no answer)', labelNames: ['status'], registers });
    this.retries = new client.Counter({ name: 'tines_connector_tines_retries_total', help: 'Retried Tines requests by reason', labelNames: ['kind'], registers });
    this.tickFailures = new client.Counter({ name: 'tines_connector_tick_errors_total', help: 'Scheduled ticks that failed before a run could be recorded', registers });

    // Stored state, read once per scrape; a database outage leaves the last values.
    let snapshot: { users: number; memberships: number; lastSuccess: number | null; status: string; failures: number } | undefined;
    const refresh = async () => {
      try {
        const r = await db.query<{ users: number; memberships: number; last_success: number | null; status: string; failures: number }>(
          `SELECT (SELECT count(*) FROM tines_users u WHERE u.connector_id = c.id AND u.removed_at IS NULL)::int AS users,
                  (SELECT count(*) FROM team_memberships m WHERE m.connector_id = c.id AND m.removed_at IS NULL)::int AS memberships,
                  extract(epoch FROM c.last_success_at)::float8 AS last_success, c.status, c.consecutive_failures AS failures
             FROM connectors c WHERE c.name = $1`,
          [connectorName],
        );
        const row = r.rows[0];
        if (row) snapshot = { users: row.users, memberships: row.memberships, lastSuccess: row.last_success, status: row.status, failures: row.failures };
      } catch (err) {
        log.warn({ err: { message: (err as Error).message } }, 'metrics: cannot read connector state');
      }
    };
    let pending: Promise<void> | undefined;
    const once = () => (pending ??= refresh().finally(() => setTimeout(() => (pending = undefined), 1000)));
    new client.Gauge({ name: 'tines_connector_users_present', help: 'Users present in Tines', registers, async collect() { await once(); if (snapshot) this.set(snapshot.users); } });
    new client.Gauge({ name: 'tines_connector_memberships_present', help: 'Team memberships present in Tines', registers, async collect() { await once(); if (snapshot) this.set(snapshot.memberships); } });
    new client.Gauge({
      name: 'tines_connector_last_success_timestamp_seconds',
      help: 'Unix time of the last successful sync (0: never)',
      registers,
      async collect() {
        await once();
        if (snapshot) this.set(snapshot.lastSuccess ?? 0);
      },
    });
    new client.Gauge({ name: 'tines_connector_consecutive_failures', help: 'Failed syncs in a row', registers, async collect() { await once(); if (snapshot) this.set(snapshot.failures); } });
    new client.Gauge({
      name: 'tines_connector_status',
      help: 'Connector status: 1 for the current one',
      labelNames: ['status'],
      registers,
      async collect() {
        await once();
        if (!snapshot) return;
        for (const s of ['active', 'reconnect_required', 'failing']) this.set({ status: s }, snapshot.status === s ? 1 : 0);
      },
    });
  }

  /** Hooks for runSync. */
  hooks(): SyncHooks {
    return {
      onOutcome: (o: SyncOutcome) => {
        this.runs.inc({ status: o.result });
        if (o.runId !== null) this.duration.observe({ status: o.result }, o.durationMs / 1000);
      },
      onResponse: (status) => this.requests.inc({ status: String(status) }),
      onRetry: (kind) => this.retries.inc({ kind }),
    };
  }

  tickFailed(): void {
    this.tickFailures.inc();
  }
}
