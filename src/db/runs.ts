// sync_runs rows: committed as running at the start, kept current while
// pages arrive, finished with counts or an error.
import { hostname } from 'node:os';
import type { ErrorKind } from '../errors.js';
import type { Queryable } from './database.js';

export type RunTrigger = 'start' | 'schedule' | 'manual';
export type RunStatus = 'running' | 'succeeded' | 'held' | 'failed' | 'aborted';

export interface RunCounts {
  usersSeen: number;
  usersAdded: number;
  usersUpdated: number;
  usersRemoved: number;
  usersRestored: number;
  membershipsAdded: number;
  membershipsUpdated: number;
  membershipsRemoved: number;
  removalCandidates: number;
  confirmCalls: number;
}

export const ZERO_COUNTS: RunCounts = Object.freeze({
  usersSeen: 0,
  usersAdded: 0,
  usersUpdated: 0,
  usersRemoved: 0,
  usersRestored: 0,
  membershipsAdded: 0,
  membershipsUpdated: 0,
  membershipsRemoved: 0,
  removalCandidates: 0,
  confirmCalls: 0,
});

/** Runs left `running` by a process that died. Call only while holding the connector's sync lock. */
export async function abortStaleRuns(db: Queryable, connectorId: number): Promise<number> {
  const r = await db.query(
    `UPDATE sync_runs
        SET status = 'aborted', finished_at = now(), error_kind = 'shutdown',
            error_message = 'the process running this sync ended before it finished'
      WHERE connector_id = $1 AND status = 'running'`,
    [connectorId],
  );
  return r.rowCount;
}

/** Whether a run of the connector started at or after `since` and ran to an end (succeeded, held or failed; an aborted one did not). */
export async function syncedSince(db: Queryable, connectorId: number, since: Date): Promise<boolean> {
  const r = await db.query(`SELECT 1 FROM sync_runs WHERE connector_id = $1 AND started_at >= $2 AND status IN ('succeeded', 'held', 'failed') LIMIT 1`, [
    connectorId,
    since,
  ]);
  return r.rows.length > 0;
}

/** A new run, committed as running; `scheduledFor` is when its schedule made it due (slot plus spread offset). */
export async function startRun(db: Queryable, connectorId: number, trigger: RunTrigger, scheduledFor?: Date): Promise<number> {
  const r = await db.query<{ id: number }>(`INSERT INTO sync_runs (connector_id, trigger, host, pid, scheduled_for) VALUES ($1, $2, $3, $4, $5) RETURNING id`, [
    connectorId,
    trigger,
    hostname(),
    process.pid,
    scheduledFor ?? null,
  ]);
  return Number(r.rows[0]!.id);
}

export async function updateRunProgress(db: Queryable, runId: number, pagesFetched: number, pagesTotal: number | null, usersSeen: number): Promise<void> {
  await db.query(`UPDATE sync_runs SET pages_fetched = $2, pages_total = $3, users_seen = $4 WHERE id = $1 AND status = 'running'`, [
    runId,
    pagesFetched,
    pagesTotal,
    usersSeen,
  ]);
}

/** The removal confirmations' progress: `done` of `total` users missing from the listing confirmed with Tines. */
export async function updateConfirmationProgress(db: Queryable, runId: number, done: number, total: number): Promise<void> {
  await db.query(`UPDATE sync_runs SET confirmations_done = $2, confirmations_total = $3 WHERE id = $1 AND status = 'running'`, [runId, done, total]);
}

export async function finishRun(
  db: Queryable,
  runId: number,
  status: Exclude<RunStatus, 'running'>,
  counts: RunCounts,
  error?: { kind: ErrorKind; message: string },
): Promise<void> {
  // clock_timestamp(), not now(): the run's transaction began before its diff was applied.
  await db.query(
    `UPDATE sync_runs
        SET status = $2, finished_at = clock_timestamp(),
            users_seen = $3, users_added = $4, users_updated = $5, users_removed = $6, users_restored = $7,
            memberships_added = $8, memberships_updated = $9, memberships_removed = $10,
            removal_candidates = $11, confirm_calls = $12,
            error_kind = $13, error_message = $14
      WHERE id = $1`,
    [
      runId,
      status,
      counts.usersSeen,
      counts.usersAdded,
      counts.usersUpdated,
      counts.usersRemoved,
      counts.usersRestored,
      counts.membershipsAdded,
      counts.membershipsUpdated,
      counts.membershipsRemoved,
      counts.removalCandidates,
      counts.confirmCalls,
      error?.kind ?? null,
      error?.message ?? null,
    ],
  );
}
