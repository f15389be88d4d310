// Pins retry behaviour: which statuses are retried, Retry-After, backoff,
// exhaustion, network errors and timeouts, and auth errors (never retried).
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncAbortedError, TinesAuthError, TinesRequestError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { USERS_PATH, type TinesClientOptions } from '../src/tines/client.js';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffMs, parseRetryAfter, RETRY_AFTER_CAP_MS } from '../src/tines/retry.js';
import { BASE, caught, makeClient as baseClient, pageQuery as q, resetError, useNock } from './helpers/tines-client.js';

const OK_PAGE = { 'admin/users': [{ id: 1 }], meta: { next_page_number: null } };

/** Two retries unless a test says otherwise. */
const makeClient = (over: Partial<TinesClientOptions> = {}) => baseClient({ maxRetries: 2, ...over });

/** A listing interceptor that answers `status` up to `times` times and counts the calls. */
function failing(status: number, times: number, headers: Record<string, string> = {}): { calls: () => number } {
  let n = 0;
  nock(BASE)
    .get(USERS_PATH)
    .query(q(1))
    .times(times)
    .reply(() => {
      n++;
      return [status, { error: `status ${status}` }, headers];
    });
  return { calls: () => n };
}

useNock();
afterEach(() => {
  vi.restoreAllMocks();
});

describe('retried statuses', () => {
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0); // backoff jitter 0: no waiting
  });

  it.each([429, 500, 502, 503, 504])('retries %i, then succeeds', async (status) => {
    const f = failing(status, 1);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const page = await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    expect(page.users.map((u) => u.id)).toEqual([1]);
    expect(f.calls()).toBe(1);
  });

  it('retries 429, then 500, then 503, then succeeds (maxRetries 3)', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).reply(429).get(USERS_PATH).query(q(1)).reply(500).get(USERS_PATH).query(q(1)).reply(503);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const page = await makeClient({ maxRetries: 3 }).fetchUsersPage(1);
    expect(page.users).toHaveLength(1);
    expect(nock.isDone()).toBe(true);
  });

  it('a 503 on getUser is retried too', async () => {
    nock(BASE)
      .get(`${USERS_PATH}/9`)
      .query({ include: 'team_memberships' })
      .reply(503)
      .get(`${USERS_PATH}/9`)
      .query({ include: 'team_memberships' })
      .reply(200, { id: 9 });
    expect((await makeClient({ maxRetries: 1 }).getUser(9))?.id).toBe(9);
  });

  it('logs each retry as a warning with path, attempt, status and kind', async () => {
    const lines: string[] = [];
    const logger = createLogger('trace', { write: (s: string) => void lines.push(s) });
    nock(BASE).get(USERS_PATH).query(q(1)).reply(503).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    await makeClient({ maxRetries: 1, logger }).fetchUsersPage(1);
    const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 'warn');
    expect(warn).toMatchObject({ path: USERS_PATH, attempt: 1, status: 503, kind: 'server' });
  });
});

describe('retries exhausted', () => {
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
  });

  it('503 every time: TinesRequestError kind server, status 503, with the attempt count', async () => {
    const f = failing(503, 10);
    const err = await caught(makeClient({ maxRetries: 2 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesRequestError);
    const e = err as TinesRequestError;
    expect(e.kind).toBe('server');
    expect(e.status).toBe(503);
    expect(e.message).toMatch(/after 3 attempts/);
    expect(e.message).toContain(USERS_PATH);
    expect(f.calls()).toBe(3);
  });

  it('429 every time: kind rate_limited', async () => {
    const f = failing(429, 10);
    const err = await caught(makeClient({ maxRetries: 1 }).fetchUsersPage(1));
    expect((err as TinesRequestError).kind).toBe('rate_limited');
    expect((err as TinesRequestError).status).toBe(429);
    expect((err as Error).message).toMatch(/after 2 attempts/);
    expect(f.calls()).toBe(2);
  });

  it('maxRetries 0 makes exactly one attempt', async () => {
    const f = failing(500, 10);
    const err = await caught(makeClient({ maxRetries: 0 }).fetchUsersPage(1));
    expect((err as TinesRequestError).kind).toBe('server');
    expect((err as Error).message).toMatch(/after 1 attempt/);
    expect(f.calls()).toBe(1);
  });
});

describe('not retried', () => {
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
  });

  it.each([400, 404, 405, 409, 422])('%i on the listing: invalid_response, one request', async (status) => {
    const f = failing(status, 5);
    const err = await caught(makeClient({ maxRetries: 3 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesRequestError);
    expect((err as TinesRequestError).kind).toBe('invalid_response');
    expect((err as TinesRequestError).status).toBe(status);
    expect(f.calls()).toBe(1);
  });

  it('401: TinesAuthError with status 401 and a revoked-key message, one request', async () => {
    const f = failing(401, 5);
    const err = await caught(makeClient({ maxRetries: 3 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesAuthError);
    const e = err as TinesAuthError;
    expect(e.status).toBe(401);
    expect(e.kind).toBe('auth');
    expect(e.path).toBe(USERS_PATH);
    expect(e.message).toMatch(/401/);
    expect(e.message).toMatch(/invalid, expired or revoked/);
    expect(e.message).toMatch(/reconnect/);
    expect(f.calls()).toBe(1);
  });

  it('403: TinesAuthError with status 403 and a Tenant-owner message different from 401', async () => {
    const f = failing(403, 5);
    const err = await caught(makeClient({ maxRetries: 3 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesAuthError);
    const e = err as TinesAuthError;
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/403/);
    expect(e.message).toMatch(/Tenant-owner/);
    expect(e.message).not.toBe(new TinesAuthError(401, USERS_PATH).message);
    expect(f.calls()).toBe(1);
  });

  it('a 401 after a retried 503 is still an auth error', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).reply(503).get(USERS_PATH).query(q(1)).reply(401);
    const err = await caught(makeClient({ maxRetries: 3 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesAuthError);
  });

  it('a redirect is not followed (the key is not sent elsewhere)', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).reply(302, '', { Location: 'https://elsewhere.example/steal' });
    const elsewhere = nock('https://elsewhere.example').get('/steal').reply(200, OK_PAGE);
    const err = await caught(makeClient().fetchUsersPage(1));
    expect((err as TinesRequestError).kind).toBe('invalid_response');
    expect((err as TinesRequestError).status).toBe(302);
    expect(elsewhere.isDone()).toBe(false);
  });
});

describe('Retry-After', () => {
  it('in seconds is honoured (Retry-After: 1 waits about a second)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(429, '', { 'Retry-After': '1' });
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const t0 = performance.now();
    await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(4000);
  });

  it('as an HTTP date is honoured', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    // HTTP dates have whole seconds: now+2 s truncated is 1..2 s away.
    const at = new Date(Date.now() + 2000).toUTCString();
    nock(BASE).get(USERS_PATH).query(q(1)).reply(503, '', { 'Retry-After': at });
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const t0 = performance.now();
    await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5000);
  });

  it('of 0 retries fast (no wait beyond the jitter, here 0)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(429, '', { 'Retry-After': '0' });
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const t0 = performance.now();
    await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    expect(performance.now() - t0).toBeLessThan(400);
  });

  it('without Retry-After, the wait is the jittered backoff from a 500 ms base', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // attempt 0: floor(0.99 * 500) = 495 ms
    nock(BASE).get(USERS_PATH).query(q(1)).reply(429);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const t0 = performance.now();
    await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(3000);
  });
});

describe('network errors and timeouts', () => {
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
  });

  it('a connection reset is retried, then succeeds', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).replyWithError(resetError());
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const page = await makeClient({ maxRetries: 1 }).fetchUsersPage(1);
    expect(page.users).toHaveLength(1);
  });

  it('connection resets every time: kind network with the attempt count and a key-free cause', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).times(2).replyWithError(resetError());
    const err = await caught(makeClient({ maxRetries: 1 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesRequestError);
    const e = err as TinesRequestError;
    expect(e.kind).toBe('network');
    expect(e.status).toBeUndefined();
    expect(e.message).toMatch(/after 2 attempts/);
    expect(e.message).toMatch(/ECONNRESET/);
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    // the cause is a plain Error, not an AxiosError carrying config/request
    expect(Object.keys(e.cause as object)).toEqual(['code']);
  });

  it('a timeout counts as a network error and is retried', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).delay(1500).reply(200, OK_PAGE);
    nock(BASE).get(USERS_PATH).query(q(1)).reply(200, OK_PAGE);
    const t0 = performance.now();
    const page = await makeClient({ maxRetries: 1, timeoutMs: 150 }).fetchUsersPage(1);
    expect(page.users).toHaveLength(1);
    expect(performance.now() - t0).toBeLessThan(1400);
  });

  it('timeouts every time: kind network, "timed out after N ms"', async () => {
    nock(BASE).get(USERS_PATH).query(q(1)).times(2).delay(1500).reply(200, OK_PAGE);
    const err = await caught(makeClient({ maxRetries: 1, timeoutMs: 150 }).fetchUsersPage(1));
    expect(err).toBeInstanceOf(TinesRequestError);
    expect((err as TinesRequestError).kind).toBe('network');
    expect((err as Error).message).toMatch(/timed out after 150 ms/);
    expect((err as Error).message).toMatch(/after 2 attempts/);
  });

  it('an abort during the retry wait stops with SyncAbortedError', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    nock(BASE).get(USERS_PATH).query(q(1)).times(5).reply(503, '', { 'Retry-After': '5' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const err = await caught(makeClient({ maxRetries: 4 }).fetchUsersPage(1, ac.signal));
    expect(err).toBeInstanceOf(SyncAbortedError);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('retry helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates, caps, and ignores garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 2.5 ', now)).toBe(2500);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('99999', now)).toBe(RETRY_AFTER_CAP_MS);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('backoffMs is full jitter below min(cap, 500 ms * 2^attempt)', () => {
    expect(backoffMs(0, () => 0)).toBe(0);
    expect(backoffMs(0, () => 0.999999)).toBe(BACKOFF_BASE_MS - 1);
    expect(backoffMs(1, () => 0.5)).toBe(500);
    expect(backoffMs(3, () => 0.5)).toBe(2000);
    expect(backoffMs(20, () => 0.999999)).toBeLessThan(BACKOFF_CAP_MS);
    expect(backoffMs(20, () => 0.5)).toBe(BACKOFF_CAP_MS / 2);
  });
});
