// A 429 without Retry-After waits for Tines' next minute window, and holds
// back every request of the client, not just the one that was refused.
import { describe, expect, it } from 'vitest';
import { RetryableError } from '../src/errors.js';
import { retryDelayMs } from '../src/tines/client.js';
import { RateLimiter } from '../src/tines/rate-limiter.js';

const rateLimited = (retryAfterMs?: number) => new RetryableError('rate_limited', 'Tines answered 429', 429, retryAfterMs);

describe('retry delays', () => {
  it('a 429 without Retry-After waits 2 s doubling up to 60 s, half of it jittered', () => {
    expect(retryDelayMs(rateLimited(), 0, () => 0)).toBe(1_000);
    expect(retryDelayMs(rateLimited(), 0, () => 1)).toBe(2_000);
    expect(retryDelayMs(rateLimited(), 3, () => 0)).toBe(8_000);
    expect(retryDelayMs(rateLimited(), 10, () => 1)).toBe(60_000);
    // Five retries span more than Tines' one-minute window.
    const total = [0, 1, 2, 3, 4].reduce((ms, a) => ms + retryDelayMs(rateLimited(), a, () => 1), 0);
    expect(total).toBeGreaterThanOrEqual(60_000);
  });

  it('Retry-After wins when Tines sends it', () => {
    expect(retryDelayMs(rateLimited(5_000), 0, () => 0)).toBe(5_000);
  });

  it('other failures use full jitter from 500 ms', () => {
    const server = new RetryableError('server', 'Tines answered 503', 503);
    expect(retryDelayMs(server, 0, () => 0)).toBe(0);
    expect(retryDelayMs(server, 2, () => 0.5)).toBe(1_000);
  });
});

describe('rate limiter pause', () => {
  it('holds back the next request for the paused time', async () => {
    const limiter = new RateLimiter(1_000_000);
    await limiter.acquire();
    limiter.pause(150);
    const t0 = performance.now();
    await limiter.acquire();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });
});
