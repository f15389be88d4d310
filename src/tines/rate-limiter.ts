// Client-side request ceiling: request starts are spaced evenly, so no 60 s
// window ever holds more than `perMinute` of them.
import { sleep } from './retry.js';

export class RateLimiter {
  private readonly spacingMs: number;
  private nextAt = 0;

  constructor(perMinute: number) {
    this.spacingMs = 60_000 / perMinute;
  }

  /** Holds every request back for `ms` from now (after a 429). */
  pause(ms: number): void {
    this.nextAt = Math.max(this.nextAt, performance.now() + ms);
  }

  /** Resolves when the caller may start a request; rejects if the signal aborts. */
  async acquire(signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + this.spacingMs;
    if (at > now) await sleep(at - now, signal);
  }
}
