// The fleet's job queue: pg-boss 10 in the connector's PostgreSQL (schema
// `pgboss`, queue `tines-sync`), used as a plain queue (policy `standard`). A
// job is one due sync of one connector. Why this way, measured, is in
// docs/queue-choice.md; in short:
// - Every replica inserts every slot of every connector; the job's id is derived
//   from the connector and the slot, so the fleet runs each slot once.
// - Never two syncs of one connector at once is the connector's advisory lock's
//   work (run-sync.ts), not the queue's: pg-boss's `stately` policy blocks the
//   whole queue behind one busy connector. A job that finds the lock held is
//   handed back and comes round again RETRY_DELAY_S later: while the sync that
//   holds the lock is alive, the job waits; once its process dies, the lock dies
//   with its connection and the job syncs.
// - A job still `active` EXPIRE after it started (its process was killed or
//   lost the database) is put back by pg-boss's maintenance, every
//   MAINTENANCE_S: so a dead process's connector is synced elsewhere within
//   SYNC_STALL_SECONDS.
// The embedded database is one process: it keeps the in-process SyncSlots.
import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { RunTrigger } from '../db/runs.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export const QUEUE = 'tines-sync';
/** pg-boss's schema; `DROP SCHEMA pgboss CASCADE` removes the queue (README, Uninstall). */
export const QUEUE_SCHEMA = 'pgboss';
/** How soon a handed-back job (its connector is being synced elsewhere, or this process stopped) comes round again. */
const RETRY_DELAY_S = 5;
/** Hand-backs are retries to pg-boss: enough for a sync that lasts days. */
const RETRY_LIMIT = 100_000;
const MAINTENANCE_S = 15;
/** Jobs completed are archived after this; a slot's id must not come back within its schedule's period (12 h: any schedule up to twice a day). */
const ARCHIVE_COMPLETED_S = 12 * 3600;

/** One due sync of one connector, as the queue carries it. */
export interface SyncJob {
  connectorId: number;
  trigger: RunTrigger;
  /** When its schedule made it due (slot plus spread offset); null for a sync nobody scheduled. */
  scheduledFor: string | null;
  /** A run of the connector that started at or after this and finished makes the job needless (one catch-up after an outage, not one per slot). */
  since: string;
  /** Retries after failed syncs so far (the backoff's exponent). */
  attempt: number;
}

export interface QueuedJob {
  id: string;
  data: SyncJob;
}

/** A job to insert: its identity (`key`: the same key from any replica is the same job) and when it may start. */
export interface NewJob {
  key: string;
  startAfter: Date;
  data: SyncJob;
}

/** A uuid (the form pg-boss's ids take) derived from a key: every replica derives the same id for the same slot. */
export function jobIdOf(key: string): string {
  const h = createHash('sha256').update(`tines-connector:job:${key}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * Installs or upgrades pg-boss's schema and creates the queue. Run by `migrate`
 * under the connector's migration lock: two processes creating the queue at
 * once deadlocked (docs/queue-choice.md).
 */
export async function installSyncQueue(url: string): Promise<void> {
  const boss = new PgBoss({ connectionString: url, schema: QUEUE_SCHEMA, max: 1, supervise: false, schedule: false, migrate: true });
  // Its errors are also the calls' rejections; without a listener an 'error' event would throw.
  boss.on('error', () => undefined);
  try {
    await boss.start();
    if (!(await boss.getQueue(QUEUE))) await boss.createQueue(QUEUE, { name: QUEUE, policy: 'standard' });
  } catch (err) {
    throw new Error(`cannot install the sync queue (schema ${QUEUE_SCHEMA}): ${errorMessage(err)}`, { cause: err });
  } finally {
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
  }
}

/** The queue as one process of the fleet uses it. */
export class SyncQueue {
  private readonly boss: PgBoss;
  private readonly expireSeconds: number;
  private errorsLogged = 0;

  constructor(url: string, stallSeconds: number, log: Logger) {
    // Expiry plus a maintenance pass plus a retry delay and a poll stay inside SYNC_STALL_SECONDS.
    this.expireSeconds = Math.max(10, stallSeconds - MAINTENANCE_S - RETRY_DELAY_S - 10);
    this.boss = new PgBoss({
      connectionString: url,
      schema: QUEUE_SCHEMA,
      application_name: 'tines-connector-queue',
      max: 3,
      // Passed on to its pg.Pool: a server that stopped answering fails a connect in 10 s instead of never.
      ...({ connectionTimeoutMillis: 10_000 } as object),
      migrate: false,
      schedule: false,
      supervise: true,
      maintenanceIntervalSeconds: MAINTENANCE_S,
      archiveCompletedAfterSeconds: ARCHIVE_COMPLETED_S,
    });
    // pg-boss reports what fails in its own loops (maintenance, a lost connection) here; without a listener it would throw.
    this.boss.on('error', (err: Error) => {
      if (++this.errorsLogged <= 10 || this.errorsLogged % 100 === 0)
        log.warn({ err: { message: errorMessage(err) }, errors: this.errorsLogged }, 'sync queue error');
    });
  }

  async start(): Promise<void> {
    await this.boss.start();
  }

  /** Inserts the jobs; one already there (the same key) stays as it is. */
  async insert(jobs: readonly NewJob[]): Promise<void> {
    if (jobs.length === 0) return;
    // In one order in every process: two replicas inserting the same slot's jobs in different orders deadlocked (measured at 3,000 connectors).
    const rows = jobs.map((j) => ({ id: jobIdOf(j.key), job: j })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    await this.boss.insert(
      rows.map(({ id, job: j }) => ({
        id,
        name: QUEUE,
        data: j.data,
        startAfter: j.startAfter.toISOString(),
        singletonKey: String(j.data.connectorId),
        expireInSeconds: this.expireSeconds,
        retryLimit: RETRY_LIMIT,
        retryDelay: RETRY_DELAY_S,
        retryBackoff: false,
      })),
    );
  }

  /**
   * Up to `n` due jobs, now active for this process. pg-boss answers an error
   * with no jobs, so this cannot tell an empty queue from a lost database.
   */
  async fetch(n: number): Promise<QueuedJob[]> {
    const jobs = await this.boss.fetch<SyncJob>(QUEUE, { batchSize: n });
    return jobs.map((j) => ({ id: j.id, data: j.data }));
  }

  async complete(id: string): Promise<void> {
    await this.boss.complete(QUEUE, id);
  }

  /** Back to the queue: another process (or this one) takes it RETRY_DELAY_S later. */
  async handBack(ids: string | string[], why: string): Promise<void> {
    await this.boss.fail(QUEUE, ids as string, { reason: why });
  }

  /** Jobs due now and not taken (created or retried, start time passed): the fleet's backlog. */
  async dueDepth(): Promise<number> {
    const r = await this.boss
      .getDb()
      .executeSql(`SELECT count(*)::int AS n FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND state < 'active' AND start_after <= now()`, [QUEUE]);
    return Number((r.rows[0] as { n: number } | undefined)?.n ?? 0);
  }

  /** Stops pg-boss's maintenance and closes its connections (the dispatcher has handed back or finished its jobs). */
  async stop(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true });
  }
}
