// A progress line every few pages or seconds: page k of n, users so far, time
// left; and for the removal confirmations, k of n and time left.
import type { Logger } from '../log.js';

const EVERY_PAGES = 10;
const EVERY_MS = 5_000;

export class ProgressReporter {
  private readonly started = performance.now();
  private lastAt = this.started;
  private lastPage = 0;

  constructor(private readonly log: Logger) {}

  page(k: number, total: number | null, users: number): void {
    const now = performance.now();
    if (k - this.lastPage < EVERY_PAGES && now - this.lastAt < EVERY_MS) return;
    this.lastAt = now;
    this.lastPage = k;
    const elapsedMs = now - this.started;
    const etaMs = total && total > k ? Math.round((elapsedMs / k) * (total - k)) : 0;
    this.log.info(
      { page: k, pagesTotal: total, users, elapsedMs: Math.round(elapsedMs), etaMs },
      `listing: page ${k} of ${total ?? '?'}, ${users} users so far, about ${Math.ceil(etaMs / 1000)} s left`,
    );
  }

  private confirmStarted: number | undefined;

  /** A confirmation line at most every few seconds, and the last one: k of n, time left at the pace so far. */
  confirming(done: number, total: number): void {
    const now = performance.now();
    this.confirmStarted ??= now;
    if (now - this.lastAt < EVERY_MS && done !== total) return;
    this.lastAt = now;
    const elapsedMs = now - this.confirmStarted;
    const etaMs = done > 0 && total > done ? Math.round((elapsedMs / done) * (total - done)) : 0;
    this.log.info(
      { confirmed: done, candidates: total, elapsedMs: Math.round(elapsedMs), etaMs },
      `confirming missing users: ${done} of ${total}${done < total ? `, about ${done > 0 ? `${Math.ceil(etaMs / 1000)} s` : '? s'} left` : ''}`,
    );
  }
}
