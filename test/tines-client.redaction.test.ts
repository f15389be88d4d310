// Pins that the API key appears in no thrown error (message, stack, cause,
// any serialisation) and in no log line, for every failure the client raises.
import { inspect } from 'node:util';
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncAbortedError, TinesAuthError, TinesRequestError } from '../src/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import { USERS_PATH, type TinesClient, type TinesClientOptions } from '../src/tines/client.js';
import { BASE, caught, makeClient as baseClient, pageQuery as q, resetError, useNock } from './helpers/tines-client.js';

// A key of its own, named so that any text it turns up in is plainly a leak.
const KEY = 'tk_REDACTION_canary_9d2b7e41';

let lines: string[];
let logger: Logger;

/** The canary key, a 150 ms timeout, one retry, and the test's own logger. */
const makeClient = (over: Partial<TinesClientOptions> = {}): TinesClient => baseClient({ apiKey: KEY, timeoutMs: 150, maxRetries: 1, logger, ...over });

/** Every interceptor requires the key, so each scenario proves the key was sent. */
const tines = () => nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}` } });

/** JSON.stringify replacer that survives cycles and also walks non-enumerable error fields. */
function safeReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return function (_key, value) {
    if (typeof value === 'bigint') return String(value);
    if (typeof value === 'function') return `[function ${value.name}]`;
    if (value && typeof value === 'object') {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
      if (value instanceof Error) {
        const out: Record<string, unknown> = {};
        for (const k of Object.getOwnPropertyNames(value)) out[k] = (value as unknown as Record<string, unknown>)[k];
        return out;
      }
    }
    return value;
  };
}

/** All text reachable from the error: every own property (enumerable or not), recursively, cycle-safe. */
function everyString(root: unknown): string {
  const out: string[] = [];
  const seen = new WeakSet<object>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 12) return;
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'number' || typeof v === 'boolean') out.push(String(v));
    else if (v && (typeof v === 'object' || typeof v === 'function')) {
      if (seen.has(v as object)) return;
      seen.add(v as object);
      for (const k of Reflect.ownKeys(v as object)) {
        out.push(String(k));
        let child: unknown;
        try {
          child = (v as Record<PropertyKey, unknown>)[k];
        } catch {
          continue;
        }
        walk(child, depth + 1);
      }
    }
  };
  walk(root, 0);
  return out.join('\n');
}

function expectKeyFree(err: unknown): void {
  const e = err as Error;
  expect(e.message).not.toContain(KEY);
  expect(String(e.stack)).not.toContain(KEY);
  expect(JSON.stringify(e, safeReplacer())).not.toContain(KEY);
  expect(JSON.stringify(e.cause ?? null, safeReplacer())).not.toContain(KEY);
  expect(everyString(e)).not.toContain(KEY);
  expect(inspect(e, { depth: 10, showHidden: true })).not.toContain(KEY);
  expect(String(e)).not.toContain(KEY);
  // also no obvious partial leak (the key without its prefix)
  expect(everyString(e)).not.toContain(KEY.slice(3));
}

useNock();
beforeEach(() => {
  lines = [];
  logger = createLogger('trace', { write: (s: string) => void lines.push(s) });
  vi.spyOn(Math, 'random').mockReturnValue(0);
});
afterEach(() => {
  vi.restoreAllMocks();
});

type Scenario = [name: string, setup: () => void, call: (c: TinesClient) => Promise<unknown>, check: (err: unknown) => void];

const listPage1 = (c: TinesClient) => c.fetchUsersPage(1);

const scenarios: Scenario[] = [
  ['401', () => void tines().get(USERS_PATH).query(q(1)).reply(401, { error: `bad token` }), listPage1, (e) => expect(e).toBeInstanceOf(TinesAuthError)],
  ['403', () => void tines().get(USERS_PATH).query(q(1)).reply(403), listPage1, (e) => expect((e as TinesAuthError).status).toBe(403)],
  [
    '503 exhausted',
    () => void tines().get(USERS_PATH).query(q(1)).times(2).reply(503, 'upstream down'),
    listPage1,
    (e) => expect((e as TinesRequestError).kind).toBe('server'),
  ],
  [
    '429 exhausted',
    () => void tines().get(USERS_PATH).query(q(1)).times(2).reply(429, '', { 'Retry-After': '0' }),
    listPage1,
    (e) => expect((e as TinesRequestError).kind).toBe('rate_limited'),
  ],
  [
    'connection reset exhausted',
    () => void tines().get(USERS_PATH).query(q(1)).times(2).replyWithError(resetError()),
    listPage1,
    (e) => expect((e as TinesRequestError).kind).toBe('network'),
  ],
  [
    'timeout exhausted',
    () => void tines().get(USERS_PATH).query(q(1)).times(2).delay(800).reply(200, {}),
    listPage1,
    (e) => expect((e as Error).message).toMatch(/timed out/),
  ],
  ['400', () => void tines().get(USERS_PATH).query(q(1)).reply(400, { error: 'bad' }), listPage1, (e) => expect((e as TinesRequestError).status).toBe(400)],
  ['not JSON', () => void tines().get(USERS_PATH).query(q(1)).reply(200, '<html>'), listPage1, (e) => expect((e as Error).message).toMatch(/JSON/)],
  [
    'invalid user',
    () =>
      void tines()
        .get(USERS_PATH)
        .query(q(1))
        .reply(200, { 'admin/users': [{ id: 'x' }] }),
    listPage1,
    (e) => expect((e as TinesRequestError).kind).toBe('invalid_response'),
  ],
  [
    'pagination loop',
    () =>
      void tines()
        .get(USERS_PATH)
        .query(q(1))
        .reply(200, { 'admin/users': [{ id: 1 }, { id: 2 }], meta: { next_page_number: 1 } }),
    async (c) => {
      for await (const _ of c.listUsers()) void _;
    },
    (e) => expect((e as Error).message).toMatch(/loop/),
  ],
  [
    'getUser wrong user',
    () => void tines().get(`${USERS_PATH}/5`).query({ include: 'team_memberships' }).reply(200, { id: 6 }),
    (c) => c.getUser(5),
    (e) => expect((e as TinesRequestError).kind).toBe('invalid_response'),
  ],
  [
    'aborted',
    () => void tines().get(USERS_PATH).query(q(1)).delay(800).reply(200, {}),
    (c) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      return c.fetchUsersPage(1, ac.signal);
    },
    (e) => expect(e).toBeInstanceOf(SyncAbortedError),
  ],
];

describe('the API key never leaks', () => {
  it.each(scenarios)('%s: not in the error, its cause, or any log line', async (_name, setup, call, check) => {
    setup();
    // Only the timeout scenario needs a short timeout; elsewhere a slow, loaded machine must not turn an answer into a timeout.
    const client = makeClient({ timeoutMs: _name === 'timeout exhausted' ? 150 : 2000 });
    const err = await caught(call(client));
    check(err);
    expectKeyFree(err);

    logger.error({ err }, 'sync failed');
    logger.error({ err, cause: (err as Error).cause }, 'sync failed (with cause)');
    logger.flush?.();
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).not.toContain(KEY);
    // the logged error carries its message, so the test is not vacuous
    expect(lines.some((l) => l.includes((err as Error).message.slice(0, 20).replace(/"/g, '\\"')))).toBe(true);
  });

  it('retry warnings logged by the client carry no key', async () => {
    tines().get(USERS_PATH).query(q(1)).reply(503).get(USERS_PATH).query(q(1)).replyWithError(resetError());
    tines().get(USERS_PATH).query(q(1)).reply(200, { 'admin/users': [], meta: {} });
    await makeClient({ maxRetries: 2 }).fetchUsersPage(1);
    expect(lines.filter((l) => l.includes('"warn"'))).toHaveLength(2);
    for (const line of lines) expect(line).not.toContain(KEY);
  });

  it('the logger blanks an apiKey or Authorization field logged by mistake', () => {
    logger.info({ apiKey: KEY, headers: { Authorization: `Bearer ${KEY}` }, req: { authorization: `Bearer ${KEY}` } }, 'oops');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(KEY);
    expect(lines[0]).toContain('[redacted]');
  });
});
