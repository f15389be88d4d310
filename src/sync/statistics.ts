// Table statistics after a large change (a first sync, a mass removal): the
// planner's picture is stale until autovacuum catches up, and the next sync
// should not pay for that.
import type { Session } from '../db/database.js';
import type { RunCounts } from '../db/runs.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** Refreshes the statistics the sync's own plans depend on, when the run wrote at least a tenth of the tenant. */
export async function refreshStatistics(s: Session, log: Logger, c: RunCounts, touched: number): Promise<void> {
  const written = c.usersAdded + c.usersUpdated + c.usersRemoved + c.usersRestored + touched + c.membershipsAdded + c.membershipsUpdated + c.membershipsRemoved;
  if (written < 1000 || written < c.usersSeen / 10) return;
  const started = performance.now();
  try {
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
