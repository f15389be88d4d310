// Pins the client-side request ceiling: request starts are spaced 60 s / rpm apart.
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { SyncAbortedError } from '../src/errors.js';
import { USERS_PATH } from '../src/tines/client.js';
import { RateLimiter } from '../src/tines/rate-limiter.js';
import { BASE, makeClient, useNock } from './helpers/tines-client.js';

useNock();

describe('request ceiling', () => {
  it('600 requests/minute spaces request starts 100 ms apart (5 sequential requests take ≥ ~400 ms)', async () => {
    const starts: number[] = [];
    nock(BASE)
      .get(/\/api\/v1\/admin\/users\/\d+$/)
      .query({ include: 'team_memberships' })
      .times(5)
      .reply((uri) => {
        starts.push(performance.now());
        return [200, { id: Number(uri.split('?')[0]!.split('/').pop()) }];
      });
    const client = makeClient({ requestsPerMinute: 600 });
    const t0 = performance.now();
    for (let id = 1; id <= 5; id++) expect((await client.getUser(id))?.id).toBe(id);
    // A lower bound the limiter guarantees (4 spacings of 100 ms); gaps between
    // arrivals are not checked one by one, since a loaded machine delays some.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
    expect(starts).toHaveLength(5);
  });

  it('concurrent requests are spaced too', async () => {
    nock(BASE)
      .get(/\/api\/v1\/admin\/users\/\d+$/)
      .query({ include: 'team_memberships' })
      .times(5)
      .reply((uri) => [200, { id: Number(uri.split('?')[0]!.split('/').pop()) }]);
    const client = makeClient({ requestsPerMinute: 600 });
    const t0 = performance.now();
    const got = await Promise.all([1, 2, 3, 4, 5].map((id) => client.getUser(id)));
    expect(got.map((u) => u?.id)).toEqual([1, 2, 3, 4, 5]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
  });

  it('a listing is paced by the same ceiling', async () => {
    for (let p = 1; p <= 4; p++) {
      nock(BASE)
        .get(USERS_PATH)
        .query({ per_page: '2', page: String(p), include: 'team_memberships' })
        .reply(200, { 'admin/users': [{ id: p * 2 - 1 }, { id: p * 2 }], meta: { next_page_number: p < 4 ? p + 1 : null } });
    }
    const client = makeClient({ requestsPerMinute: 600 });
    const t0 = performance.now();
    let n = 0;
    for await (const page of client.listUsers()) n += page.users.length;
    expect(n).toBe(8);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it('each client has its own limiter: a second client starts at once while the first waits out a 10 s spacing', async () => {
    nock(BASE)
      .get(/\/api\/v1\/admin\/users\/\d+$/)
      .query({ include: 'team_memberships' })
      .times(2)
      .reply((uri) => [200, { id: Number(uri.split('?')[0]!.split('/').pop()) }]);
    const a = makeClient({ requestsPerMinute: 6 });
    const b = makeClient({ requestsPerMinute: 6 });
    expect((await a.getUser(1))?.id).toBe(1);
    // A shared limiter would hold b's request for 10 s; 5 s leaves a loaded machine room either way.
    expect((await b.getUser(2, AbortSignal.timeout(5_000)))?.id).toBe(2);
  });
});

describe('RateLimiter', () => {
  it('the first acquire is immediate, the next waits the spacing', async () => {
    const limiter = new RateLimiter(600);
    expect(limiter.reserve()).toBe(0);
    const t0 = performance.now();
    await limiter.acquire();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('a high ceiling asks for no wait beyond its own spacing (0.6 ms at 100,000 a minute)', () => {
    const limiter = new RateLimiter(100_000);
    const waits = [1, 2, 3, 4, 5].map(() => limiter.reserve());
    expect(waits[0]).toBe(0);
    // Back to back, the k-th start waits at most k spacings; a slow machine only makes it less.
    waits.forEach((w, k) => expect(w).toBeLessThanOrEqual(k * 0.6 + 1e-9));
  });

  it('does not bank unused capacity: after idling, requests are still spaced', async () => {
    const limiter = new RateLimiter(600);
    await limiter.acquire();
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await limiter.acquire();
    await limiter.acquire();
    await limiter.acquire();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(180);
  });

  it('an abort while waiting rejects with SyncAbortedError', async () => {
    const limiter = new RateLimiter(6); // 10 s spacing
    await limiter.acquire();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await expect(limiter.acquire(ac.signal)).rejects.toBeInstanceOf(SyncAbortedError);
  });
});
