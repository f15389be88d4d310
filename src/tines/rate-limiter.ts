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

  /** Takes the next start slot and says how long from now until it: 0 when a request may start at once. */
  reserve(): number {
    const now = performance.now();
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + this.spacingMs;
    return at - now;
  }

  /** Resolves when the caller may start a request; rejects if the signal aborts. */
  async acquire(signal?: AbortSignal): Promise<void> {
    const waitMs = this.reserve();
    if (waitMs > 0) await sleep(waitMs, signal);
  }
}
