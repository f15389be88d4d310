// The fleet benchmark's pure parts (bench/fleet.ts runs the rest): the fake's
// tenant mix, deterministic from its seed, and the figures computed from
// sync_runs rows. No database, no processes: the benchmark itself is a script.
import { describe, expect, it } from 'vitest';
import { analyseRuns, percentile, type RunRow } from '../bench/fleet-analysis.js';
import { tenantKey, tenantMix } from '../src/fake/tenant-mix.js';

describe('tenantMix', () => {
  it('is the same for the same seed, and another for another seed', () => {
    expect(tenantMix(200, 7)).toEqual(tenantMix(200, 7));
    expect(tenantMix(200, 7).map((t) => t.users)).not.toEqual(tenantMix(200, 8).map((t) => t.users));
  });

  it('has 1% of 20k users, 9% of 1k-5k, the rest 20-200, keys from the index', () => {
    const mix = tenantMix(1000, 1);
    expect(mix).toHaveLength(1000);
    expect(mix.filter((t) => t.users === 20_000)).toHaveLength(10);
    expect(mix.filter((t) => t.users >= 1000 && t.users <= 5000)).toHaveLength(90);
    expect(mix.filter((t) => t.users >= 20 && t.users <= 200)).toHaveLength(900);
    expect(mix.map((t) => t.key)).toEqual(mix.map((_, i) => tenantKey(i)));
    expect(new Set(mix.map((t) => t.key)).size).toBe(1000);
    // The classes are spread over the indexes, not bunched at the start.
    expect(mix.slice(0, 100).filter((t) => t.users > 200).length).toBeLessThan(100);
    expect(mix.slice(500).some((t) => t.users > 200)).toBe(true);
  });

  it('rounds the classes for small counts', () => {
    expect(tenantMix(50, 1).filter((t) => t.users === 20_000)).toHaveLength(1);
    expect(tenantMix(1, 1)[0]!.users).toBeLessThanOrEqual(200);
    expect(tenantMix(0, 1)).toEqual([]);
  });
});

const MIN = 60_000;
const W0 = 100 * MIN; // window start
const run = (over: Partial<RunRow>): RunRow => ({
  connector_id: 1,
  trigger: 'schedule',
  status: 'succeeded',
  pid: 10,
  started: W0,
  finished: W0 + 1000,
  scheduled: null,
  ...over,
});
const opts = { connectors: 2, windowStart: W0, windowEnd: W0 + 3 * MIN, slotMs: MIN, diedAt: () => undefined };

describe('analyseRuns', () => {
  it('counts due, missed and doubled slots on each connector own offset grid, and lateness', () => {
    const rows = [
      // connector 1, offset 5 s: all three slots, one of them twice
      ...[0, 1, 2].map((k) => run({ scheduled: W0 + k * MIN + 5000, started: W0 + k * MIN + 5000 + 100 * (k + 1), finished: W0 + k * MIN + 9000 })),
      run({ scheduled: W0 + MIN + 5000, started: W0 + MIN + 20_000, finished: W0 + MIN + 21_000, pid: 11 }),
      // connector 2, offset 30 s: one slot of three, and one run off its grid
      run({ connector_id: 2, scheduled: W0 + 30_000, started: W0 + 31_000, finished: W0 + 32_000 }),
      run({ connector_id: 2, scheduled: W0 + MIN + 12_345, started: W0 + MIN + 13_000, finished: W0 + MIN + 14_000 }),
      // outside the window: not a slot of it
      run({ connector_id: 2, scheduled: W0 - MIN + 30_000, started: W0 - MIN + 30_000, finished: W0 - MIN + 31_000 }),
      // unscheduled (at start): no slot, but a sync done in the window
      run({ connector_id: 2, trigger: 'start', started: W0 + 40_000, finished: W0 + 50_000 }),
    ];
    const a = analyseRuns(rows, opts);
    expect(a.slotsDue).toBe(6);
    expect(a.slotsCovered).toBe(4);
    expect(a.missedSlots).toBe(2);
    expect(a.missedButSynced).toBe(0);
    expect(a.duplicateSlotSyncs).toBe(1);
    expect(a.unexpectedScheduledFor).toBe(1);
    expect(a.overlappingSyncs).toBe(0);
    expect(a.syncsDone).toBe(7); // every succeeded run finished inside the window except the one before it
    expect(a.latenessP50).toBe(200);
    expect(a.latenessP99).toBe(1000);
  });

  it('tells a missed slot during which another run of the connector was open', () => {
    const rows = [
      run({ scheduled: W0 + 5000, started: W0 + 5000, finished: W0 + 6000 }),
      run({ trigger: 'start', started: W0 + MIN + 10_000, finished: W0 + MIN + 11_000 }), // during the slot due at W0 + 65 s
    ];
    const a = analyseRuns(rows, { ...opts, connectors: 1 });
    expect([a.slotsDue, a.missedSlots, a.missedButSynced]).toEqual([3, 2, 1]);
    expect(a.allSyncedAt).toBe(W0 + 6000);
    expect(analyseRuns(rows, opts).allSyncedAt).toBeNull(); // the second connector never synced
  });

  it('counts overlapping runs, a run left open counting only until its process died', () => {
    const rows = [
      run({ pid: 10, started: W0, finished: null, status: 'running' }), // its process died at W0 + 10 s
      run({ pid: 11, started: W0 + 20_000, finished: W0 + 30_000 }), // after the death: no overlap
      run({ pid: 11, started: W0 + 25_000, finished: W0 + 26_000 }), // inside the one before: overlap
      run({ connector_id: 2, pid: 12, started: W0, finished: null, status: 'running' }), // process never died: open to the end
      run({ connector_id: 2, pid: 11, started: W0 + MIN, finished: W0 + MIN + 1 }),
    ];
    const a = analyseRuns(rows, { ...opts, diedAt: (pid) => (pid === 10 ? W0 + 10_000 : undefined) });
    expect(a.overlappingSyncs).toBe(2);
  });

  it('measures failover from the kill to the next run of each connector the killed process was syncing', () => {
    const kill = { pid: 10, at: W0 + 10_000 };
    const rows = [
      // in flight at the kill, later marked aborted by another process: not a duplicate of its retry
      run({ pid: 10, scheduled: W0 + 1000, started: W0 + 1000, finished: W0 + 70_000, status: 'aborted' }),
      run({ pid: 11, scheduled: W0 + 1000, started: W0 + 40_000, finished: W0 + 41_000 }),
      // finished before the kill: not in flight
      run({ connector_id: 2, pid: 10, started: W0, finished: W0 + 5000 }),
      // in flight, never synced again
      run({ connector_id: 3, pid: 10, started: W0 + 9000, finished: null, status: 'running' }),
    ];
    const died = (pid: number) => (pid === 10 ? kill.at : undefined);
    const a = analyseRuns(rows, { ...opts, diedAt: died, kill });
    expect(a.failover).toEqual({ interrupted: 2, maxMs: null, unrecovered: 1 });
    expect(a.duplicateSlotSyncs).toBe(0);
    expect(a.overlappingSyncs).toBe(0);
    const b = analyseRuns(rows.slice(0, 3), { ...opts, diedAt: died, kill });
    expect(b.failover).toEqual({ interrupted: 1, maxMs: 30_000, unrecovered: 0 });
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([...Array(100).keys()], 99)).toBe(98);
  });
});
