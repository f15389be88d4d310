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
      .get(/\/api\/v1\/admin\/users\/\d+$/).query({ include: 'team_memberships' })
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
      .get(/\/api\/v1\/admin\/users\/\d+$/).query({ include: 'team_memberships' })
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

  it('each client has its own limiter; a high ceiling does not slow requests down', async () => {
    nock(BASE)
      .get(/\/api\/v1\/admin\/users\/\d+$/).query({ include: 'team_memberships' })
      .times(5)
      .reply((uri) => [200, { id: Number(uri.split('?')[0]!.split('/').pop()) }]);
    const client = makeClient({ requestsPerMinute: 100000 });
    const t0 = performance.now();
    for (let id = 1; id <= 5; id++) await client.getUser(id);
    expect(performance.now() - t0).toBeLessThan(350);
  });
});

describe('RateLimiter', () => {
  it('the first acquire is immediate, the next waits the spacing', async () => {
    const limiter = new RateLimiter(600);
    const t0 = performance.now();
    await limiter.acquire();
    expect(performance.now() - t0).toBeLessThan(50);
    await limiter.acquire();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
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
