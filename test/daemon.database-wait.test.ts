// The wait for a database that does not answer at start: bounded jittered
// backoff, every failure told, and a stop that ends the wait at once and
// releases what an attempt still in progress opens.
import { describe, expect, it } from 'vitest';
import { START_RETRY_CAP_MS, startRetryDelayMs, untilDatabaseReady } from '../src/daemon/database-wait.js';
import { createLogger } from '../src/log.js';

const log = createLogger('silent');

describe('untilDatabaseReady', () => {
  it('waits 1 s doubling, half of it jittered, never more than 30 s', () => {
    expect([1, 2, 3, 4].map((n) => startRetryDelayMs(n, () => 0))).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map((n) => startRetryDelayMs(n, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(startRetryDelayMs(50, () => 1)).toBe(START_RETRY_CAP_MS);
    expect(START_RETRY_CAP_MS).toBe(30_000);
  });

  it('retries until the attempt succeeds, telling each failure', async () => {
    const reasons: string[] = [];
    let calls = 0;
    const result = await untilDatabaseReady(
      async () => {
        if (++calls < 3) throw new Error(`connect ECONNREFUSED (call ${calls})`);
        return { calls };
      },
      async () => undefined,
      { signal: new AbortController().signal, log, onWaiting: (r) => reasons.push(r) },
    );
    expect(result).toEqual({ calls: 3 });
    expect(reasons).toEqual([
      expect.stringMatching(/^waiting for the database \(attempt 1 failed: connect ECONNREFUSED \(call 1\); next in 1 s\)$/),
      expect.stringMatching(/^waiting for the database \(attempt 2 failed: connect ECONNREFUSED \(call 2\); next in [12] s\)$/),
    ]);
  }, 10_000);

  it('a stop during the backoff ends the wait at once', async () => {
    const stop = new AbortController();
    const started = performance.now();
    const waiting = untilDatabaseReady(
      async () => {
        throw new Error('down');
      },
      async () => undefined,
      { signal: stop.signal, log, onWaiting: () => setTimeout(() => stop.abort(), 50) },
    );
    expect(await waiting).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(400);
  });

  it('a stop during an attempt returns at once; what the attempt opens later is released', async () => {
    const stop = new AbortController();
    let finish!: (v: { db: string }) => void;
    const released: string[] = [];
    const waiting = untilDatabaseReady(
      () => new Promise<{ db: string }>((resolve) => (finish = resolve)),
      async (opened) => void released.push(opened.db),
      { signal: stop.signal, log },
    );
    stop.abort();
    expect(await waiting).toBeUndefined();
    finish({ db: 'late' });
    await new Promise((r) => setTimeout(r, 10));
    expect(released).toEqual(['late']);
  });
});
