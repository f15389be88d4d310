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
 * The schedule's latest slot at or before `now`: stepping back a minute at a
 * time (a second at a time for a six-field expression), up to 35 days; a
 * schedule with no slot in that window answers `now`.
 */
export function previousSlot(schedule: string, timezone: string, now: Date): Date {
  const key = `${schedule}|${timezone}`;
  const known = lastSlots.get(key);
  if (known && known.slot <= now.getTime() && now.getTime() < known.next) return new Date(known.slot);
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    const withSeconds = schedule.trim().split(/\s+/).length === 6;
    const step = withSeconds ? 1000 : 60_000;
    const limit = now.getTime() - 35 * 24 * 3600_000;
    for (let t = Math.floor(now.getTime() / step) * step; t >= limit; t -= step) {
      if (!task.match(new Date(t))) continue;
      // Kept until the next slot: a thousand connectors on one schedule search once.
      lastSlots.set(key, { slot: t, next: task.getNextRun()?.getTime() ?? t });
      return new Date(t);
    }
    return now;
  } finally {
    void task.destroy();
  }
}
const lastSlots = new Map<string, { slot: number; next: number }>();

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
