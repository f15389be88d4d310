// A real HTTP fake of the Tines admin users API (node:http only), for
// integration tests, the demo and the benchmark. Behaviour follows the
// "Tines API facts" of CONTRACT.md; switches emulate older tenants and faults.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMembership {
  team_id: number;
  team_name: string;
  role: string;
}
export interface FakeUser {
  id: number;
  email: string;
  first_name: string;
  last_name: string;
  admin: boolean;
  is_active?: boolean;
  tenant_permissions: string[];
  scim_uid: string | null;
  created_at: string;
  updated_at: string;
  last_seen: string | null;
  team_memberships: FakeMembership[];
  [extra: string]: unknown;
}
export interface FakeTinesOptions {
  host?: string;
  port?: number;
  users?: FakeUser[];
  apiKey?: string;
  maxPerPage?: number;
  /** Per-key requests per rolling minute, answered 429 beyond it; 0 (default) = unlimited. */
  requestsPerMinute?: number;
  /** Budget for cached page bodies; pages beyond it are rendered per request. Default 512 MiB. */
  pageCacheBytes?: number;
}
export interface FakeFault {
  match?: (req: { path: string; page?: number; userId?: number }) => boolean;
  /** HTTP status; 0 destroys the connection without answering (a network error). */
  status: number;
  headers?: Record<string, string>;
  body?: string;
  times?: number;
}
export interface FakeRequestLog {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  auth: string | undefined;
  /** Date.now() when the request arrived. */
  at: number;
}

export const USERS_PATH = '/api/v1/admin/users';
const MAX_LOG = 100_000; // a long benchmark run must not grow the log without bound

/** Notifies on every structural change, so tests may mutate `users` directly. */
class TenantMap extends Map<number, FakeUser> {
  onChange?: () => void;
  override set(id: number, u: FakeUser): this {
    super.set(id, u);
    this.onChange?.();
    return this;
  }
  override delete(id: number): boolean {
    const had = super.delete(id);
    if (had) this.onChange?.();
    return had;
  }
  override clear(): void {
    super.clear();
    this.onChange?.();
  }
}

export class FakeTines {
  readonly url: string;
  readonly users: Map<number, FakeUser>;
  validKeys: Set<string>;
  forbiddenKeys = new Set<string>();
  requests: FakeRequestLog[] = [];
  includeMemberships = true;
  omitIsActive = false;
  omitNextPageNumber = false;
  /** Meta without `pages` and `count`, as a proxy or an older tenant may send it. */
  omitTotals = false;
  /**
   * A listing that never ends: `next_page_number` is always the next page.
   * 'empty-after-end': pages past the last one are empty; 'repeat-first': every
   * page request is answered with page 1's users (a proxy that drops `page`).
   */
  endlessPaging: false | 'empty-after-end' | 'repeat-first' = false;
  latencyMs = 0;
  requestsPerMinute: number;
  faults: FakeFault[] = [];
  onPage?: (page: number) => void | Promise<void>;
  /** Page-cache counters, so tests and the benchmark can see the cache work. */
  readonly cacheStats = { hits: 0, misses: 0 };

  private readonly maxPerPage: number;
  private readonly cacheBudget: number;
  private readonly defaultRpm: number;
  /** The default tenant's ids, pages and cache; other tenants have their own (see addTenant). */
  private readonly main: TenantState;
  private readonly tenants = new Map<string, TenantState>();
  private gate: Promise<void> = Promise.resolve();
  private rate = new Map<string, number[]>();

  private constructor(
    private readonly server: http.Server,
    url: string,
    opts: FakeTinesOptions,
  ) {
    this.url = url;
    this.maxPerPage = opts.maxPerPage ?? 500;
    this.cacheBudget = opts.pageCacheBytes ?? 512 * 1024 * 1024;
    this.defaultRpm = this.requestsPerMinute = opts.requestsPerMinute ?? 0;
    this.validKeys = new Set([opts.apiKey ?? 'test-key']);
    const map = new TenantMap();
    for (const u of opts.users ?? []) map.set(u.id, u);
    this.main = new TenantState(map);
    map.onChange = () => this.invalidate();
    this.users = map;
  }

  /**
   * Another tenant on this same server, told apart by its key (many connectors,
   * one fake): requests with `key` see `users` and only them. Returns its users.
   */
  addTenant(key: string, users: FakeUser[]): Map<number, FakeUser> {
    const map = new TenantMap();
    for (const u of users) map.set(u.id, u);
    const state = new TenantState(map);
    map.onChange = () => state.invalidate();
    this.tenants.set(key, state);
    return map;
  }

  removeTenant(key: string): void {
    this.tenants.delete(key);
  }

  /** The users the tenant of `key` holds (the default tenant's for its keys). */
  usersOf(key: string): Map<number, FakeUser> {
    return this.tenants.get(key)?.users ?? this.users;
  }

  static async start(opts: FakeTinesOptions = {}): Promise<FakeTines> {
    const server = http.createServer();
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000; // must outlive keepAliveTimeout
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const fake = new FakeTines(server, `http://${host}:${addr.port}`, opts);
    server.on('request', (req, res) => {
      void fake.handle(req, res);
    });
    return fake;
  }

  /** Drops cached ids and pages; call it after mutating a user object in place. */
  invalidate(): void {
    this.main.invalidate();
  }

  setUsers(users: FakeUser[]): void {
    const map = this.users as TenantMap;
    map.onChange = undefined; // one invalidation, not one per user
    map.clear();
    for (const u of users) map.set(u.id, u);
    map.onChange = () => this.invalidate();
    this.invalidate();
  }
  addUser(u: FakeUser): void {
    this.users.set(u.id, u);
  }
  removeUser(id: number): void {
    this.users.delete(id);
  }
  updateUser(id: number, patch: Partial<FakeUser>): void {
    const old = this.users.get(id);
    if (!old) throw new Error(`no user ${id}`);
    // A new object, so references held elsewhere keep their old state.
    this.users.set(id, { ...old, ...patch, id } as FakeUser);
  }
  pageCount(perPage: number): number {
    return Math.max(1, Math.ceil(this.users.size / this.clampPerPage(perPage)));
  }

  reset(): void {
    this.faults = [];
    this.requests = [];
    this.includeMemberships = true;
    this.omitIsActive = false;
    this.omitNextPageNumber = false;
    this.omitTotals = false;
    this.endlessPaging = false;
    this.latencyMs = 0;
    this.onPage = undefined;
    this.requestsPerMinute = this.defaultRpm;
    this.rate.clear();
    this.cacheStats.hits = this.cacheStats.misses = 0;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections(); // keep-alive sockets would hold close() open for 60 s
    await closed;
  }

  private cacheBytes(): number {
    let n = this.main.cacheBytes;
    for (const t of this.tenants.values()) n += t.cacheBytes;
    return n;
  }

  private clampPerPage(n: number): number {
    return Math.min(this.maxPerPage, Math.max(1, Math.floor(n)));
  }

  private render(u: FakeUser, withMemberships: boolean): Record<string, unknown> {
    // The connector's usual request needs no copy: stringify the stored object as is.
    if (withMemberships && !this.omitIsActive && Array.isArray(u.team_memberships)) return u;
    const { team_memberships, ...rest } = u;
    if (this.omitIsActive) delete rest.is_active;
    return withMemberships ? { ...rest, team_memberships: team_memberships ?? [] } : rest;
  }

  /** One page's user array as JSON. */
  private pageJson(t: TenantState, perPage: number, page: number, include: boolean): string {
    const ids = t.ids();
    const out: Record<string, unknown>[] = [];
    for (let i = (page - 1) * perPage, end = Math.min(ids.length, page * perPage); i < end; i++) {
      out.push(this.render(t.users.get(ids[i]!)!, include));
    }
    return JSON.stringify(out);
  }

  /**
   * A whole page's body, bytes ready to send, cached until the tenant or a switch
   * changes: a cached page costs the server next to nothing. The key holds all
   * the body depends on (its links repeat the request's host and query).
   */
  private pageBody(t: TenantState, url: URL, host: string | undefined, perPage: number, page: number, include: boolean): Buffer {
    const key = `${perPage}:${page}:${include ? 1 : 0}:${this.omitIsActive ? 1 : 0}:${this.omitNextPageNumber ? 1 : 0}:${this.omitTotals ? 1 : 0}:${this.endlessPaging || 0}:${host ?? ''}:${url.search}`;
    const hit = t.pageCache.get(key);
    if (hit !== undefined) {
      this.cacheStats.hits++;
      return hit;
    }
    this.cacheStats.misses++;
    const count = t.users.size;
    const pages = Math.max(1, Math.ceil(count / perPage));
    const base = host ? `http://${host}` : this.url;
    const link = (p: number) => {
      const q = new URLSearchParams(url.searchParams);
      q.set('page', String(p));
      return `${base}${USERS_PATH}?${q}`;
    };
    const next = page < pages || this.endlessPaging ? page + 1 : null;
    const meta: Record<string, unknown> = {
      current_page: page,
      previous_page: page > 1 ? link(page - 1) : null,
      next_page: next === null ? null : link(next),
      next_page_number: next,
      per_page: perPage,
      pages,
      count,
    };
    if (this.omitNextPageNumber) delete meta.next_page_number;
    if (this.omitTotals) {
      delete meta.pages;
      delete meta.count;
    }
    const served = this.endlessPaging === 'repeat-first' ? 1 : page;
    const body = Buffer.from(`{"admin/users":${this.pageJson(t, perPage, served, include)},"meta":${JSON.stringify(meta)}}`);
    // Insert-only under the budget: LRU would thrash on a sequential sweep larger than it.
    // Each Host and query string is a variant of its own: at 1M users one variant is
    // ~410 MB, so a warm-up must ask exactly as the connector will (the bench does).
    if (this.cacheBytes() + body.length <= this.cacheBudget) {
      t.pageCache.set(key, body);
      t.cacheBytes += body.length;
    }
    return body;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname;
    const query = Object.fromEntries(url.searchParams);
    const auth = req.headers.authorization;
    const at = Date.now();
    const log = (status: number) => {
      if (this.requests.length >= MAX_LOG) this.requests.splice(0, MAX_LOG / 2);
      this.requests.push({ method: req.method ?? 'GET', path, query, status, auth, at });
    };
    const send = (status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
      log(status);
      if (res.destroyed) return Promise.resolve();
      const h: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v; // no duplicate headers
      res.writeHead(status, h);
      return new Promise<void>((resolve) => res.end(body, () => resolve()));
    };
    try {
      await this.gate; // an onPage hook still mutating the tenant finishes first
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));

      const m = /^\/api\/v1\/admin\/users(?:\/([^/]+))?$/.exec(path);
      const userId = m?.[1] !== undefined && /^\d+$/.test(m[1]) ? Number(m[1]) : undefined;
      const pageArg = m && m[1] === undefined ? parsePositive(query.page, 1) : undefined;
      const fi = this.faults.findIndex((f) => !f.match || f.match({ path, page: pageArg, userId }));
      if (fi >= 0) {
        const f = this.faults[fi]!;
        f.times = (f.times ?? 1) - 1;
        if (f.times <= 0) this.faults.splice(fi, 1);
        if (f.status === 0) {
          log(0);
          res.destroy();
          return;
        }
        await send(f.status, f.body ?? JSON.stringify({ error: `Injected fault ${f.status}` }), f.headers);
        return;
      }
      if (req.method !== 'GET' || !m) {
        await send(404, '{"error":"Not found"}');
        return;
      }

      const key = /^Bearer\s+(.+)$/i.exec(auth ?? '')?.[1]?.trim();
      const tenant = key === undefined ? undefined : this.tenants.get(key);
      if (key === undefined || (!tenant && !this.validKeys.has(key))) {
        if (key !== undefined && this.forbiddenKeys.has(key)) await send(403, '{"error":"Forbidden"}');
        else await send(401, '{"error":"Unauthorized"}');
        return;
      }
      const retryAfter = this.rateLimited(key);
      if (retryAfter > 0) {
        await send(429, '{"error":"Too many requests"}', { 'Retry-After': String(retryAfter) });
        return;
      }

      const t = tenant ?? this.main;
      const include = this.includeMemberships && (query.include ?? '').split(',').includes('team_memberships');
      if (m[1] !== undefined) {
        const u = userId === undefined ? undefined : t.users.get(userId);
        if (!u) await send(404, '{"error":"Not found"}');
        else await send(200, JSON.stringify(this.render(u, include)));
        return;
      }

      const perPage = this.clampPerPage(parsePositive(query.per_page, 20));
      const body = this.pageBody(t, url, req.headers.host, perPage, pageArg!, include);
      // Hold later requests until the hook is done, so its mutation lands exactly between pages.
      const hooked = send(200, body)
        .then(() => this.onPage?.(pageArg!))
        .catch((err: unknown) => {
          console.error('FakeTines onPage failed:', err);
        });
      this.gate = Promise.all([this.gate, hooked]).then(() => undefined);
      await hooked;
    } catch (err) {
      if (!res.headersSent) await send(500, JSON.stringify({ error: String(err) }));
      else res.destroy();
    }
  }

  /** Seconds until a slot frees, or 0 when the request may proceed (rolling 60 s window per key). */
  private rateLimited(key: string): number {
    if (this.requestsPerMinute <= 0) return 0;
    const now = Date.now();
    let starts = this.rate.get(key);
    if (!starts) this.rate.set(key, (starts = []));
    while (starts.length && starts[0]! <= now - 60_000) starts.shift();
    if (starts.length >= this.requestsPerMinute) return Math.max(1, Math.ceil((starts[0]! + 60_000 - now) / 1000));
    starts.push(now);
    return 0;
  }
}

/** One tenant's users and what is derived from them: sorted ids, cached page bodies. */
class TenantState {
  private sortedIds: Float64Array | null = null;
  readonly pageCache = new Map<string, Buffer>();
  cacheBytes = 0;
  constructor(readonly users: Map<number, FakeUser>) {}

  ids(): Float64Array {
    // A typed array sorts numerically in native code: ~10x faster than Array#sort for 1M ids.
    if (!this.sortedIds) this.sortedIds = Float64Array.from(this.users.keys()).sort();
    return this.sortedIds;
  }

  invalidate(): void {
    this.sortedIds = null;
    if (this.pageCache.size) {
      this.pageCache.clear();
      this.cacheBytes = 0;
    }
  }
}

function parsePositive(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number.parseInt(v, 10);
  return Number.isFinite(n) && n >= 1 ? n : dflt;
}

// ---- deterministic, realistic users ----

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAKE_FIRST_NAMES = [
  'Aoife',
  'Ben',
  'Chloe',
  'Daniel',
  'Emma',
  'Finn',
  'Grace',
  'Hiro',
  'Isla',
  'Jack',
  'Kate',
  'Liam',
  'Maya',
  'Noah',
  'Olivia',
  'Priya',
  'Quinn',
  'Rosa',
  'Sean',
  'Tara',
  'Uma',
  'Victor',
  'Wei',
  'Xavier',
  'Yara',
  'Zoe',
  'Amir',
  'Beatriz',
  'Conor',
  'Dana',
  'Elena',
  'Farah',
  'Gabriel',
  'Hannah',
  'Ivan',
  'Julia',
];
const LAST = [
  'Murphy',
  'Kelly',
  'Smith',
  'Garcia',
  'Chen',
  'Nguyen',
  'Okafor',
  'Patel',
  'Rossi',
  'Schmidt',
  'Tanaka',
  "O'Brien",
  'Walsh',
  'Byrne',
  'Silva',
  'Kowalski',
  'Johansson',
  'Dubois',
  'Novak',
  'Haddad',
  'Kim',
  'Lopez',
  'Müller',
  'Fitzgerald',
  'Andersen',
  'Costa',
  'Ibrahim',
  'Jensen',
  'Moreau',
  'Ryan',
];
export const FAKE_TEAMS = [
  'Security Operations',
  'Detection Engineering',
  'IT Operations',
  'Incident Response',
  'Threat Intelligence',
  'Cloud Platform',
  'Identity & Access',
  'Compliance',
  'Vulnerability Management',
  'Help Desk',
];
export const FAKE_ROLES = ['VIEWER', 'EDITOR', 'TEAM_ADMIN'];
const PERMISSIONS = ['AUDIT_LOG_READ', 'TENANT_SETTINGS_MANAGE', 'CREDENTIALS_MANAGE', 'TEAMS_MANAGE', 'USERS_MANAGE'];
const DAY = 86_400_000;

export interface GenerateOptions {
  startId?: number;
  seed?: number;
  emailDomain?: string;
  teams?: number;
  /** Reference time for timestamps; default today at 00:00 UTC, so a day's output is reproducible. */
  now?: number;
}

export function generateUsers(n: number, opts: GenerateOptions = {}): FakeUser[] {
  const rand = mulberry32(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const startId = opts.startId ?? 1;
  const domain = opts.emailDomain ?? 'example.com';
  const teamCount = Math.max(1, opts.teams ?? 8);
  const teams = Array.from({ length: teamCount }, (_, i) => ({ team_id: 1000 + i, team_name: FAKE_TEAMS[i] ?? `Team ${i + 1}` }));
  const now = opts.now ?? Math.floor(Date.now() / DAY) * DAY;
  const iso = (t: number) => new Date(Math.floor(t / 1000) * 1000).toISOString();
  const users: FakeUser[] = [];
  const locals = new Map<string, string>();
  for (let k = 0; k < n; k++) {
    const id = startId + k;
    const first = pick(FAKE_FIRST_NAMES),
      last = pick(LAST);
    let local = locals.get(`${first}.${last}`); // normalize() is slow; names repeat
    if (local === undefined)
      locals.set(
        `${first}.${last}`,
        (local = `${first}.${last}`
          .toLowerCase()
          .normalize('NFD')
          .replace(/[^a-z.]/g, '')),
      );
    const created = now - (1 + rand() * 3 * 365) * DAY;
    const updated = created + rand() * (now - created);
    const seenFrom = Math.max(created, now - 200 * DAY);
    const admin = rand() < 0.02;
    const perms = admin ? [...PERMISSIONS] : rand() < 0.15 ? PERMISSIONS.filter(() => rand() < 0.3) : [];
    const memberships: FakeMembership[] = [];
    const m = Math.min(teamCount, Math.floor(rand() * 4));
    const start = Math.floor(rand() * teamCount);
    for (let j = 0; j < m; j++) memberships.push({ ...teams[(start + j) % teamCount]!, role: pick(FAKE_ROLES) });
    users.push({
      id,
      email: `${local}+${id}@${domain}`,
      first_name: first,
      last_name: last,
      admin,
      is_active: rand() >= 0.03,
      tenant_permissions: perms,
      scim_uid:
        rand() < 0.3
          ? `scim-${Math.floor(rand() * 0xffffffff)
              .toString(16)
              .padStart(8, '0')}-${id}`
          : null,
      created_at: iso(created),
      updated_at: iso(updated),
      last_seen: rand() < 0.05 ? null : iso(seenFrom + rand() * (now - seenFrom)),
      team_memberships: memberships,
    });
  }
  return users;
}
