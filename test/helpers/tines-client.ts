// A TinesClient against a nock-mocked tenant: its address and key, a client
// with small test settings, the listing query it sends, and the nock lifecycle.
import nock from 'nock';
import { afterEach, beforeEach } from 'vitest';
import { createLogger } from '../../src/log.js';
import { TinesClient, type TinesClientOptions } from '../../src/tines/client.js';

export const BASE = 'https://acme.tines.example';
export const KEY = 'tk_client_test_key_4b8d';

/** A client for BASE with KEY: pages of 2, no rate limit to speak of, 2 s timeout, no retries, silent; `over` replaces any of it. */
export function makeClient(over: Partial<TinesClientOptions> = {}): TinesClient {
  return new TinesClient({
    baseUrl: BASE,
    apiKey: KEY,
    pageSize: 2,
    requestsPerMinute: 100000,
    timeoutMs: 2000,
    maxRetries: 0,
    logger: createLogger('silent'),
    ...over,
  });
}

/** The query string the client sends for one page of the user listing. */
export const pageQuery = (page: number, perPage = 2) => ({ per_page: String(perPage), page: String(page), include: 'team_memberships' });

/** The error a `read ECONNRESET` connection reset raises. */
export const resetError = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

/** What `p` rejects with; throws if it resolves. */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

/**
 * Registers, in the calling describe (or file), hooks that allow no real
 * network but 127.0.0.1 during each test, and drop every interceptor after it.
 */
export function useNock(): void {
  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
}
