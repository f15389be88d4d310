// When a connector's scheduled sync starts: its slot (the cron expression's
// time) plus a stable offset, so connectors sharing a schedule start spread
// over SYNC_SPREAD_SECONDS instead of calling Tines and the database in the same
// second. The offset comes from a hash of the connector's id (the same in every
// process and after every restart), and stays inside the gap between two slots.
import { createHash } from 'node:crypto';
import cron from 'node-cron';

/** The shortest gap between the next few slots of a schedule, in ms (a long one for a schedule that never fires). */
export function schedulePeriodMs(schedule: string, timezone: string): number {
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    const next = task.getNextRuns(4).map((d) => d.getTime());
    let period = Number.POSITIVE_INFINITY;
    for (let i = 1; i < next.length; i++) period = Math.min(period, next[i]! - next[i - 1]!);
    return Number.isFinite(period) ? period : 24 * 3600_000;
  } finally {
    void task.destroy();
  }
}

/**
 * The connector's offset after each slot: a stable hash of its id into
 * [0, window), the window being SYNC_SPREAD_SECONDS but at most 90% of the gap
 * between slots (a sync that starts after its next slot would skip it).
 */
export function spreadOffsetMs(connectorId: number | string, spreadSeconds: number, periodMs: number): number {
  const windowMs = Math.floor(Math.min(spreadSeconds * 1000, periodMs * 0.9));
  if (windowMs <= 0) return 0;
  const h = createHash('sha256').update(`tines-connector:spread:${connectorId}`).digest().readUInt32BE(0);
  return h % windowMs;
}
