// Table upkeep after a large change (a first sync, a mass removal): the
// planner's picture is stale until autovacuum catches up, and the next sync
// should not pay for that. The embedded database has no autovacuum at all, so
// there the sync vacuums what it wrote.
import type { Database, Session } from '../db/database.js';
import type { RunCounts } from '../db/runs.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** The tables a sync writes. */
const SYNC_TABLES = ['tines_users', 'team_memberships', 'change_events', 'listing_pages'] as const;

/** Rows the run wrote (events excepted); a run that wrote at least a tenth of the tenant, and 1000 rows, is a large change. */
export function isLargeChange(c: RunCounts, touched: number): boolean {
  const written = c.usersAdded + c.usersUpdated + c.usersRemoved + c.usersRestored + touched + c.membershipsAdded + c.membershipsUpdated + c.membershipsRemoved;
  return written >= 1000 && written >= c.usersSeen / 10;
}

/**
 * After a large change: on the embedded database, VACUUM the sync's tables
 * (PGlite runs no autovacuum: dead rows and unset visibility bits would stay
 * for good); on both, refresh the statistics the sync's own plans depend on.
 * Runs after the commit, outside any transaction.
 */
export async function refreshStatistics(backend: Database['backend'], s: Session, log: Logger, c: RunCounts, touched: number): Promise<void> {
  if (!isLargeChange(c, touched)) return;
  const started = performance.now();
  try {
    if (backend === 'embedded') {
      await s.exec(`VACUUM ${SYNC_TABLES.join(', ')}`);
      log.debug({ durationMs: Math.round(performance.now() - started) }, 'tables vacuumed after a large change (the embedded database has no autovacuum)');
    }
    // Only the columns those plans join and filter on, from a small sample: a
    // full ANALYZE reads every page (and every raw jsonb) of a large tenant
    // (0.75 s at 100k users, against 0.04 s). Autovacuum refreshes the rest.
    await s.exec(
      `SET default_statistics_target = 10;
       ANALYZE tines_users (connector_id, tines_user_id, removed_at);
       ANALYZE team_memberships (connector_id, tines_user_id, team_id, removed_at);
       RESET default_statistics_target`,
    );
    log.debug({ durationMs: Math.round(performance.now() - started) }, 'table statistics refreshed after a large change');
  } catch (err) {
    log.warn({ err: { message: errorMessage(err) } }, 'could not refresh table statistics');
  }
}
