// The Tines API client: one axios instance with keep-alive, a request ceiling,
// retries with backoff, and errors that never carry the key.
import { hash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { RetryableError, SyncAbortedError, TinesAuthError, TinesRequestError } from '../errors.js';
import type { Settings } from '../config.js';
import type { Logger } from '../log.js';
import { RateLimiter } from './rate-limiter.js';
import { backoffMs, parseRetryAfter, sleep, tlsCertificateProblem } from './retry.js';
import { metaSchema, parseUser, perPageOf, toTinesUser, validateUser, type PageMeta, type TinesUser } from './schema.js';

export const USERS_PATH = '/api/v1/admin/users';

export interface TinesClientOptions {
  baseUrl: string;
  apiKey: string;
  pageSize: number;
  requestsPerMinute: number;
  timeoutMs: number;
  maxRetries: number;
  logger: Logger;
  /** Called after every HTTP answer (or failure, with status 0); for metrics. */
  onResponse?: (status: number) => void;
  onRetry?: (kind: string) => void;
  /** The most pages one listing may take when the tenant says neither meta.pages nor meta.count (default MAX_LISTING_PAGES). */
  maxListingPages?: number;
}

/**
 * A listing whose tenant gives no total (neither meta.pages nor meta.count) ends
 * here at the latest: 100,000 pages of 500 are 50 million users, far beyond any
 * tenant, yet a bound on a proxy that keeps sending next_page_number.
 */
export const MAX_LISTING_PAGES = 100_000;

export interface UsersPage {
  /** The page number requested. */
  page: number;
  /** The user objects exactly as sent, each validated (empty for a known page). */
  raw: Record<string, unknown>[];
  /** Their ids, in order (empty for a known page). */
  ids: number[];
  /** How many users the page holds. */
  size: number;
  meta: PageMeta;
  /** The users normalised (computed on each access; the sync normalises only users that changed). */
  readonly users: TinesUser[];
  /** `sha256:` and the SHA-256 of the body as sent, when the caller holds pages (see ListOptions.known). */
  digest?: string;
  /** The caller already holds this exact page: its body was not even parsed. */
  known?: boolean;
}

/** What the caller kept of a page it read before: enough to recognise it and go on without parsing it again. */
export interface KnownPage {
  /** `sha256:` and the SHA-256 of the body as it came then. */
  digest: string;
  meta: PageMeta;
  /** How many users it holds. */
  size: number;
}

export interface ListOptions {
  /**
   * Pages the caller holds, by page number: a page whose body has the same
   * digest comes back as `known`, unparsed, with the kept meta and size.
   */
  known?: ReadonlyMap<number, KnownPage>;
}

/** Strips an axios error down to what may be logged: no config, no headers, no request, no key. */
function describeAxiosError(err: unknown, apiKey: string): Error {
  const scrub = (m: string) => (apiKey ? m.split(apiKey).join('[redacted]') : m).replace(/Bearer\s+\S+/gi, 'Bearer [redacted]');
  if (axios.isAxiosError(err)) {
    const plain = new Error(scrub(`${err.code ?? 'ERR'}: ${err.message}`));
    (plain as NodeJS.ErrnoException).code = err.code;
    return plain;
  }
  return new Error(scrub(err instanceof Error ? err.message : String(err)));
}

const NETWORK_CODES = new Set([
  'ECONNABORTED',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_NETWORK',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
]);

export class TinesClient {
  private readonly http: AxiosInstance;
  private readonly limiter: RateLimiter;
  private readonly log: Logger;

  constructor(private readonly opts: TinesClientOptions) {
    this.log = opts.logger;
    this.limiter = new RateLimiter(opts.requestsPerMinute);
    this.http = axios.create({
      baseURL: opts.baseUrl,
      // No axios timeout: attempt() gives each request one hard deadline instead.
      headers: { Authorization: `Bearer ${opts.apiKey}`, Accept: 'application/json', 'User-Agent': 'tines-connector/0.1' },
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 4 }),
      // Every status comes back as a response; this class decides what it means.
      validateStatus: () => true,
      // Bytes: a page can be recognised by its digest before it is decoded or parsed.
      responseType: 'arraybuffer',
      transformResponse: [(data: unknown) => data],
      maxRedirects: 0,
    });
  }

  /** One GET with the request ceiling, retries and error classification. Resolves with 2xx or 404. */
  private async get(path: string, params: Record<string, string | number>, signal?: AbortSignal): Promise<AxiosResponse<Buffer>> {
    for (let attempt = 0; ; attempt++) {
      await this.limiter.acquire(signal);
      try {
        return await this.attempt(path, params, signal);
      } catch (err) {
        if (!(err instanceof RetryableError) || attempt >= this.opts.maxRetries) {
          if (err instanceof RetryableError) {
            throw new TinesRequestError(err.kind, `GET ${path} failed after ${attempt + 1} attempts: ${err.message}`, err.status, { cause: err.cause });
          }
          throw err;
        }
        const delayMs = retryDelayMs(err, attempt);
        // Every request of this client waits too: a 429 is about the key, not this request.
        if (err.kind === 'rate_limited') this.limiter.pause(delayMs);
        this.opts.onRetry?.(err.kind);
        this.log.warn({ path, attempt: attempt + 1, status: err.status, kind: err.kind, delayMs }, `retrying Tines request: ${err.message}`);
        await sleep(delayMs, signal);
      }
    }
  }

  private async attempt(path: string, params: Record<string, string | number>, signal?: AbortSignal): Promise<AxiosResponse<Buffer>> {
    let res: AxiosResponse<Buffer>;
    // A hard limit on the whole request: axios' own timeout does not cover a body that trickles in.
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      res = await this.http.get<Buffer>(path, { params, signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
    } catch (err) {
      if (signal?.aborted) throw new SyncAbortedError();
      if (deadline.aborted) {
        this.opts.onResponse?.(0);
        throw new RetryableError('network', `timed out after ${this.opts.timeoutMs} ms`);
      }
      if (axios.isCancel(err)) throw new SyncAbortedError();
      this.opts.onResponse?.(0);
      const cause = describeAxiosError(err, this.opts.apiKey);
      const code = (cause as NodeJS.ErrnoException).code ?? '';
      // A certificate that fails verification stays failed for as long as backoff lasts: not retried.
      const tls = tlsCertificateProblem(code);
      if (tls) {
        throw new TinesRequestError(
          'network',
          `GET ${path}: TLS certificate refused: ${tls} (${cause.message}); not retried. ` +
            'Check TINES_TENANT_DOMAIN; behind a TLS-inspecting proxy, give its CA to Node with NODE_EXTRA_CA_CERTS.',
          undefined,
          { cause },
        );
      }
      if (NETWORK_CODES.has(code) || !axios.isAxiosError(err) || !err.response) {
        throw new RetryableError('network', cause.message, undefined, undefined, { cause });
      }
      throw new TinesRequestError('network', cause.message, undefined, { cause });
    }
    const status = res.status;
    this.opts.onResponse?.(status);
    if (status >= 200 && status < 300) return res;
    if (status === 404) return res;
    if (status === 401 || status === 403) throw new TinesAuthError(status, path);
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    if (status === 429) throw new RetryableError('rate_limited', 'Tines answered 429 (rate limited)', status, retryAfterMs);
    if (status >= 500) throw new RetryableError('server', `Tines answered ${status}`, status, retryAfterMs);
    throw new TinesRequestError('invalid_response', `Tines answered ${status} to GET ${path}`, status);
  }

  private parseBody(res: AxiosResponse<Buffer>, path: string): unknown {
    try {
      return JSON.parse(Buffer.isBuffer(res.data) ? res.data.toString('utf8') : String(res.data));
    } catch {
      throw new TinesRequestError('invalid_response', `GET ${path} answered ${res.status} with a body that is not JSON`, res.status);
    }
  }

  /** One page of GET /api/v1/admin/users, validated. */
  async fetchUsersPage(page: number, signal?: AbortSignal, perPage = this.opts.pageSize, opts: ListOptions = {}): Promise<UsersPage> {
    const res = await this.get(USERS_PATH, { per_page: perPage, page, include: 'team_memberships' }, signal);
    const where = `${USERS_PATH} page ${page}`;
    if (res.status === 404) throw new TinesRequestError('invalid_response', `GET ${where} answered 404`, 404);
    // SHA-256: on CPUs with SHA extensions (this machine's) it runs at twice MD5's speed.
    // The prefix names the algorithm, so a digest stored under another one never matches.
    const digest = opts.known ? `sha256:${hash('sha256', res.data, 'base64')}` : undefined;
    const held = opts.known?.get(page);
    const known = held !== undefined && held.digest === digest ? held : undefined;
    if (known) {
      // Byte for byte a page the caller applied before: nothing in it needs reading again.
      return { page, raw: [], ids: [], size: known.size, meta: known.meta, digest, known: true, users: [] };
    }
    const body = this.parseBody(res, where) as Record<string, unknown> | null;
    const list = body && typeof body === 'object' ? (body['admin/users'] ?? body['users']) : undefined;
    if (!Array.isArray(list)) {
      throw new TinesRequestError('invalid_response', `GET ${where}: the body has no "admin/users" array`, res.status);
    }
    const meta = metaSchema.safeParse(body?.meta ?? {});
    if (!meta.success) {
      throw new TinesRequestError('invalid_response', `GET ${where}: "meta" is malformed (${meta.error.issues[0]?.path.join('.')})`, res.status);
    }
    const ids: number[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const invalid = validateUser(list[i]);
      if (invalid) throw new TinesRequestError('invalid_response', `GET ${where}: user ${i}: ${invalid}`, res.status);
      ids[i] = Number((list[i] as { id: number | string }).id);
    }
    const raw = list as Record<string, unknown>[];
    return {
      page,
      raw,
      ids,
      size: raw.length,
      meta: meta.data,
      ...(digest !== undefined ? { digest, known: false } : {}),
      get users() {
        return raw.map((r) => toTinesUser(r) as TinesUser);
      },
    };
  }

  /**
   * Walks every page: next_page_number when present, else the next_page URL,
   * else pages/count. While the caller handles page k, the next pages are
   * already requested: k+1 always, and k+2 when the pages are numbered one by
   * one up to a known total (the request ceiling still spaces them all).
   */
  async *listUsers(signal?: AbortSignal, opts: ListOptions = {}): AsyncGenerator<UsersPage> {
    // Requests still in flight when the walk ends (done, failed or abandoned) are cancelled.
    const done = new AbortController();
    const walk = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    const requested = new Set<number>();
    const inFlight = new Map<number, Promise<UsersPage>>();
    const request = (n: number): Promise<UsersPage> => {
      let p = inFlight.get(n);
      if (!p) {
        p = this.fetchUsersPage(n, walk, this.opts.pageSize, opts);
        // A rejected prefetch is observed when awaited; keep Node from calling it unhandled meanwhile.
        p.catch(() => undefined);
        inFlight.set(n, p);
      }
      return p;
    };
    try {
      let pageNo: number | null = 1;
      // What the tenant said bounds the listing; a tenant that says nothing gets the fixed ceiling.
      let maxPages = this.opts.maxListingPages ?? MAX_LISTING_PAGES;
      let previous: UsersPage | undefined;
      while (pageNo !== null) {
        requested.add(pageNo);
        const current: UsersPage = await request(pageNo);
        inFlight.delete(pageNo);
        if (previous && repeatsPage(current, previous)) {
          throw new TinesRequestError(
            'invalid_response',
            `pagination loop: page ${current.page} repeats the users of page ${previous.page} (the page parameter is ignored?)`,
          );
        }
        const next = nextPageNumber(current, this.opts.pageSize);
        const perPage = perPageOf(current.meta, this.opts.pageSize);
        if (current.meta.pages) maxPages = Math.max(current.meta.pages, 1) * 2 + 10;
        else if (typeof current.meta.count === 'number') maxPages = Math.ceil(current.meta.count / perPage) * 2 + 10;
        if (next !== null && (requested.has(next) || next < 1 || requested.size >= maxPages)) {
          throw new TinesRequestError(
            'invalid_response',
            requested.size >= maxPages
              ? `pagination loop: page ${current.page} points to page ${next}, beyond the ${maxPages} pages this listing may take`
              : `pagination loop: page ${current.page} points to page ${next}, which was already requested or is out of range`,
          );
        }
        const total = current.meta.pages;
        const ahead = next !== null && next === current.page + 1 && typeof total === 'number' && next < total ? next + 1 : null;
        // A speculative request the listing did not follow is dropped (its answer is never used).
        for (const n of inFlight.keys()) if (n !== next && n !== ahead) inFlight.delete(n);
        // Started now, awaited on a later turn of the loop (each has its rejection observed in request()).
        if (next !== null) void request(next);
        if (ahead !== null) void request(ahead);
        yield current;
        previous = current;
        pageNo = next;
      }
    } finally {
      done.abort();
    }
  }

  /** GET /api/v1/admin/users/{id} with its team memberships (as the listing asks): the user, or null when Tines answers 404. */
  async getUser(id: number, signal?: AbortSignal): Promise<TinesUser | null> {
    const path = `${USERS_PATH}/${id}`;
    const res = await this.get(path, { include: 'team_memberships' }, signal);
    if (res.status === 404) return null;
    const body = this.parseBody(res, path) as Record<string, unknown> | null;
    // Liberal: the object itself, or wrapped in a single key.
    let obj: unknown = body;
    if (body && typeof body === 'object' && !('id' in body)) {
      const inner = Object.values(body).find((v) => v && typeof v === 'object' && !Array.isArray(v) && 'id' in (v as object));
      if (inner) obj = inner;
    }
    const user = parseUser(obj);
    if (typeof user === 'string') throw new TinesRequestError('invalid_response', `GET ${path}: ${user}`, res.status);
    if (user.id !== id) throw new TinesRequestError('invalid_response', `GET ${path} answered user ${user.id}`, res.status);
    return user;
  }

  /** One authenticated call (for `reconnect`): throws TinesAuthError when refused. */
  async checkAccess(signal?: AbortSignal): Promise<{ count: number | null }> {
    const page = await this.fetchUsersPage(1, signal, 1);
    return { count: page.meta.count ?? null };
  }
}

/**
 * How long to wait before retry `attempt` (0-based): Retry-After when Tines sent
 * one; for a 429 without it, long enough to reach Tines' next one-minute window
 * (2 s doubling, up to 60 s, half of it jittered); otherwise full jitter.
 */
export function retryDelayMs(err: RetryableError, attempt: number, random: () => number = Math.random): number {
  const jitter = backoffMs(attempt, random);
  if (err.retryAfterMs !== undefined) return Math.max(err.retryAfterMs, jitter);
  if (err.kind === 'rate_limited') {
    const ceiling = Math.min(60_000, 2_000 * 2 ** attempt);
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }
  return jitter;
}

/** Whether `current` holds exactly the users of the page before it, or the very same bytes: a tenant (or proxy) serving one page again. */
function repeatsPage(current: UsersPage, previous: UsersPage): boolean {
  if (current.digest !== undefined && current.digest === previous.digest) return true;
  return current.ids.length > 0 && current.ids.length === previous.ids.length && current.ids.every((id, i) => id === previous.ids[i]);
}

/** The page after `current`, or null at the end. An empty page is the end, whatever its links say. */
export function nextPageNumber(current: UsersPage, pageSize: number): number | null {
  const { meta } = current;
  const perPage = perPageOf(meta, pageSize);
  if (current.size === 0) return null;
  if (meta.next_page_number !== undefined) return meta.next_page_number ?? null;
  if (meta.next_page !== undefined) {
    if (meta.next_page === null || meta.next_page === '') return null;
    const m = /[?&]page=(\d+)/.exec(meta.next_page);
    if (m) return Number(m[1]);
  }
  if (typeof meta.pages === 'number') return current.page < meta.pages ? current.page + 1 : null;
  if (typeof meta.count === 'number') return current.page * perPage < meta.count ? current.page + 1 : null;
  return current.size >= perPage ? current.page + 1 : null;
}

/** The client for one tenant (its origin) and the key in force, with the configured limits and optional metric hooks. */
export function createTinesClient(
  config: Settings,
  baseUrl: string,
  apiKey: string,
  log: Logger,
  hooks?: Pick<TinesClientOptions, 'onResponse' | 'onRetry'>,
): TinesClient {
  return new TinesClient({
    baseUrl,
    apiKey,
    pageSize: config.tines.pageSize,
    requestsPerMinute: config.tines.requestsPerMinute,
    timeoutMs: config.tines.timeoutMs,
    maxRetries: config.tines.maxRetries,
    logger: log.child({ component: 'tines-client' }),
    onResponse: hooks?.onResponse,
    onRetry: hooks?.onRetry,
  });
}
