// RUNS_RETENTION_DAYS: sync_runs older than that are deleted, except each
// connector's latest (status and reports keep their "last run"); change_events
// are kept (their sync_run_id has no foreign key). A connector syncing every 15
// minutes writes 35,000 runs a year; this keeps the table to the window.
import type { Queryable } from './database.js';

const BATCH = 5_000;

/** Deletes runs started more than `days` ago, in batches; returns how many. */
export async function pruneRuns(db: Queryable, days: number): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await db.query(
      `WITH latest AS (
         SELECT (SELECT r.id FROM sync_runs r WHERE r.connector_id = c.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1) AS id
           FROM connectors c
       ), doomed AS (
         SELECT id FROM sync_runs
          WHERE started_at < now() - make_interval(days => $1::int)
            AND status <> 'running'
            AND id NOT IN (SELECT id FROM latest WHERE id IS NOT NULL)
          LIMIT $2
       )
       DELETE FROM sync_runs WHERE id IN (SELECT id FROM doomed)`,
      [days, BATCH],
    );
    total += r.rowCount;
    if (r.rowCount < BATCH) return total;
  }
}
