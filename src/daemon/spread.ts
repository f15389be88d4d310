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
 * The schedule's latest slot at or before `now`, or null when it is further
 * back than one gap between slots (or than MAX_STEPS steps: a yearly schedule).
 * Found by stepping back a minute at a time (a second at a time for a six-field
 * expression whose seconds vary), once per schedule and slot: a thousand
 * connectors on one schedule search once.
 */
export function previousSlot(schedule: string, timezone: string, now: Date): Date | null {
  const key = `${schedule}|${timezone}`;
  const t = now.getTime();
  const known = lastSlots.get(key);
  if (known && known.from <= t && t < known.until) return known.slot === null ? null : new Date(known.slot);
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    // Ten slots ahead see a weekend's gap in a weekday schedule.
    const next = task.getNextRuns(10).map((d) => d.getTime());
    let gap = 0;
    for (let i = 1; i < next.length; i++) gap = Math.max(gap, next[i]! - next[i - 1]!);
    const fields = schedule.trim().split(/\s+/);
    const fixedSecond = fields.length === 5 ? 0 : /^\d+$/.test(fields[0]!) ? Number(fields[0]) : undefined;
    const step = fixedSecond === undefined ? 1000 : 60_000;
    const limit = t - (gap || step);
    let found: number | null = null;
    let at = fixedSecond === undefined ? Math.floor(t / 1000) * 1000 : Math.floor(t / 60_000) * 60_000 + fixedSecond * 1000;
    if (at > t) at -= 60_000;
    for (let steps = 0; at >= limit && steps < MAX_STEPS; at -= step, steps++) {
      if (task.match(new Date(at))) {
        found = at;
        break;
      }
    }
    lastSlots.set(key, { slot: found, from: found ?? t, until: next[0] ?? t + 60_000 });
    return found === null ? null : new Date(found);
  } finally {
    void task.destroy();
  }
}
const MAX_STEPS = 50_000;
const lastSlots = new Map<string, { slot: number | null; from: number; until: number }>();

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
