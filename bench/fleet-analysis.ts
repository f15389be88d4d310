// The fleet benchmark's figures from `sync_runs` rows alone (bench/fleet.ts
// reads them; the connector's own logs and metrics are never asked). Times are
// epoch milliseconds. Definitions:
//
// - A connector's due instants are its schedule's slots plus its spread offset;
//   each scheduled run records the one it served in `scheduled_for`. The offset
//   is read from the runs themselves (scheduled_for modulo the slot), so the
//   harness needs no copy of the spreading rule; a run whose scheduled_for is off
//   its connector's grid is counted in `unexpectedScheduledFor` and ignored.
// - The window [windowStart, windowEnd) is a whole number of slots long, so each
//   connector has exactly that many due instants in it, whatever its offset:
//   slotsDue = connectors x slots. A due instant is covered when some run has it
//   as scheduled_for, whatever that run's outcome; missedSlots = due - covered.
//   missedButSynced: those of them during whose slot ([due, due + slot)) some
//   other run of the connector was open anyway (a start sync, a retry).
// - duplicateSlotSyncs: runs beyond the first for one connector and one due
//   instant in the window, not counting runs interrupted by the kill (a retry
//   of those is the failover, not a duplicate).
// - overlappingSyncs: pairs of runs of one connector whose [started, end)
//   intersect, over the whole run (warm-up too). A run's end is its finished_at,
//   but never later than its process's death: a run left 'running' by a killed
//   process (or marked 'aborted' by another process later) was open only until
//   its process died.
// - lateness: for each covered due instant in the window, its first run's start
//   minus the due instant (p50, p99 by nearest rank).
// - syncsDone: runs that succeeded with finished_at inside the window (the CPU
//   per sync divides the window's CPU by these).
// - allSyncedAt: when every connector had finished a successful sync (the end of
//   the start-up's first loads; a warm-up shorter than that measures them).
// - failover: runs of the killed process in flight at the kill; for each, the
//   time from the kill to its connector's next run start. maxMs is null when no
//   run was in flight or any of them never got a next run (then `unrecovered`).

export interface RunRow {
  connector_id: number;
  trigger: string;
  status: string;
  pid: number | null;
  started: number;
  finished: number | null;
  scheduled: number | null;
}

export interface AnalysisOptions {
  connectors: number;
  windowStart: number;
  windowEnd: number;
  slotMs: number;
  /** When the process of this pid died (exited or was killed); undefined when it is not known to have died. */
  diedAt: (pid: number) => number | undefined;
  kill?: { pid: number; at: number };
}

export interface Analysis {
  byStatus: string;
  slotsDue: number;
  slotsCovered: number;
  missedSlots: number;
  /** Missed due instants during which the connector was synced by some other run anyway (a start sync, a retry, another slot's). */
  missedButSynced: number;
  duplicateSlotSyncs: number;
  overlappingSyncs: number;
  latenessP50: number | null;
  latenessP99: number | null;
  syncsDone: number;
  windowFailed: number;
  unexpectedScheduledFor: number;
  failover: { interrupted: number; maxMs: number | null; unrecovered: number };
  /** When the last connector's first successful sync finished; null when one never succeeded. */
  allSyncedAt: number | null;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const rounded = (v: number | null) => (v === null ? null : Math.round(v));

export function analyseRuns(rows: readonly RunRow[], o: AnalysisOptions): Analysis {
  const slotsPerConnector = Math.round((o.windowEnd - o.windowStart) / o.slotMs);
  const residue = (t: number) => ((Math.round(t) % o.slotMs) + o.slotMs) % o.slotMs;
  const byConnector = new Map<number, RunRow[]>();
  const statuses = new Map<string, number>();
  for (const r of rows) {
    let list = byConnector.get(r.connector_id);
    if (!list) byConnector.set(r.connector_id, (list = []));
    list.push(r);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  }
  const interrupted = (r: RunRow) => o.kill !== undefined && r.pid === o.kill.pid && r.started <= o.kill.at && (r.finished === null || r.finished > o.kill.at);

  let unexpected = 0;
  let covered = 0;
  let duplicates = 0;
  let overlaps = 0;
  let windowFailed = 0;
  let missedButSynced = 0;
  let syncsDone = 0;
  const lateness: number[] = [];
  let failoverMax: number | null = null;
  let unrecovered = 0;
  let inFlight = 0;
  let allSyncedAt: number | null = byConnector.size === o.connectors ? 0 : null;

  for (const runs of byConnector.values()) {
    runs.sort((a, b) => a.started - b.started);
    const firstOk = Math.min(...runs.map((r) => (r.status === 'succeeded' && r.finished !== null ? r.finished : Infinity)));
    if (allSyncedAt !== null) allSyncedAt = Number.isFinite(firstOk) ? Math.max(allSyncedAt, firstOk) : null;

    // The connector's grid: the commonest residue of its scheduled_for values.
    const counts = new Map<number, number>();
    for (const r of runs) if (r.scheduled !== null) counts.set(residue(r.scheduled), (counts.get(residue(r.scheduled)) ?? 0) + 1);
    const grid = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];

    const slots = new Map<number, RunRow[]>();
    for (const r of runs) {
      if (r.status === 'succeeded' && r.finished !== null && r.finished >= o.windowStart && r.finished < o.windowEnd) syncsDone++;
      if (r.scheduled === null) continue;
      if (residue(r.scheduled) !== grid) {
        unexpected++;
        continue;
      }
      const due = Math.round(r.scheduled);
      if (due < o.windowStart || due >= o.windowEnd) continue;
      let list = slots.get(due);
      if (!list) slots.set(due, (list = []));
      list.push(r);
    }
    for (const [due, list] of slots) {
      covered++;
      lateness.push(Math.min(...list.map((r) => r.started)) - due);
      duplicates += Math.max(0, list.filter((r) => !interrupted(r)).length - 1);
      windowFailed += list.filter((r) => r.status !== 'succeeded').length;
    }

    const end = (r: RunRow) => Math.min(r.finished ?? Infinity, (r.pid !== null ? o.diedAt(r.pid) : undefined) ?? Infinity);
    if (grid !== undefined) {
      for (let due = o.windowStart + ((((grid - o.windowStart) % o.slotMs) + o.slotMs) % o.slotMs); due < o.windowEnd; due += o.slotMs) {
        if (slots.has(due)) continue;
        if (runs.some((r) => r.started < due + o.slotMs && end(r) > due)) missedButSynced++;
      }
    }
    for (let i = 0; i < runs.length; i++) {
      const e = end(runs[i]!);
      for (let j = i + 1; j < runs.length && runs[j]!.started < e; j++) overlaps++;
    }

    if (o.kill) {
      for (const r of runs) {
        if (!interrupted(r)) continue;
        inFlight++;
        const next = runs.find((n) => n.started > o.kill!.at && n.pid !== o.kill!.pid);
        if (!next) unrecovered++;
        else failoverMax = Math.max(failoverMax ?? 0, Math.round(next.started - o.kill.at));
      }
    }
  }
  lateness.sort((a, b) => a - b);
  const slotsDue = o.connectors * slotsPerConnector;
  return {
    byStatus: [...statuses]
      .sort()
      .map(([s, n]) => `${s} ${n}`)
      .join(', '),
    slotsDue,
    slotsCovered: covered,
    missedSlots: slotsDue - covered,
    missedButSynced,
    duplicateSlotSyncs: duplicates,
    overlappingSyncs: overlaps,
    latenessP50: rounded(percentile(lateness, 50)),
    latenessP99: rounded(percentile(lateness, 99)),
    syncsDone,
    windowFailed,
    unexpectedScheduledFor: unexpected,
    allSyncedAt,
    failover: { interrupted: inFlight, maxMs: inFlight > 0 && unrecovered === 0 ? failoverMax : null, unrecovered },
  };
}
