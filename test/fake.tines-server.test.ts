// Pins the fake Tines' wire behaviour: the connector's integration tests trust it.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers, type FakeUser } from '../src/fake/tines-server.js';

const fake = await FakeTines.start({ users: generateUsers(45, { seed: 7 }), apiKey: 'good' });
fake.forbiddenKeys.add('weak');
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
  fake.setUsers(generateUsers(45, { seed: 7 }));
});

async function get(path: string, key: string | null = 'good') {
  const res = await fetch(`${fake.url}${path}`, { headers: key === null ? {} : { Authorization: `Bearer ${key}` } });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  } // injected fault bodies need not be JSON
  return { status: res.status, headers: res.headers, text, body };
}
const list = (q: string) => get(`/api/v1/admin/users?${q}`);

describe('generateUsers', () => {
  it('is deterministic and realistic', () => {
    const a = generateUsers(300, { seed: 3, now: Date.UTC(2026, 0, 1) });
    expect(generateUsers(300, { seed: 3, now: Date.UTC(2026, 0, 1) })).toEqual(a);
    expect(new Set(a.map((u) => u.email)).size).toBe(300);
    expect(a[0]!.email).toMatch(/^[a-z]+\.[a-z]+\+1@example\.com$/);
    expect(a.map((u) => u.id)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    for (const u of a) {
      expect(u.team_memberships.length).toBeLessThanOrEqual(3);
      for (const m of u.team_memberships) expect(['VIEWER', 'EDITOR', 'TEAM_ADMIN']).toContain(m.role);
      if (u.last_seen) expect(Date.parse(u.last_seen)).toBeGreaterThanOrEqual(Date.UTC(2026, 0, 1) - 200 * 86_400_000);
    }
    expect(a.filter((u) => u.last_seen === null).length).toBeLessThan(40);
  });
});

describe('listing', () => {
  it('pages with full meta, absolute links and ascending ids', async () => {
    const p1 = await list('per_page=20&include=team_memberships');
    expect(p1.status).toBe(200);
    expect(p1.headers.get('content-type')).toBe('application/json');
    expect(p1.body.meta).toEqual({
      current_page: 1,
      previous_page: null,
      next_page: `${fake.url}/api/v1/admin/users?per_page=20&include=team_memberships&page=2`,
      next_page_number: 2,
      per_page: 20,
      pages: 3,
      count: 45,
    });
    expect(p1.body['admin/users'].map((u: FakeUser) => u.id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(p1.body['admin/users'][0].team_memberships).toBeInstanceOf(Array);

    const p3 = await list('per_page=20&page=3&include=team_memberships');
    expect(p3.body['admin/users']).toHaveLength(5);
    expect(p3.body.meta).toMatchObject({ current_page: 3, next_page: null, next_page_number: null, pages: 3 });
    expect(p3.body.meta.previous_page).toBe(`${fake.url}/api/v1/admin/users?per_page=20&page=2&include=team_memberships`);

    const past = await list('per_page=20&page=9');
    expect(past.body['admin/users']).toEqual([]);
    expect(past.body.meta).toMatchObject({ next_page: null, next_page_number: null, count: 45 });
  });

  it('defaults to 20 per page, clamps per_page, and reports at least one page', async () => {
    expect((await list('')).body.meta).toMatchObject({ per_page: 20, current_page: 1, pages: 3 });
    expect((await list('per_page=100000')).body.meta).toMatchObject({ per_page: 500, pages: 1 });
    expect((await list('per_page=0')).body.meta.per_page).toBe(20);
    fake.setUsers([]);
    expect((await list('per_page=10')).body.meta).toMatchObject({ pages: 1, count: 0, next_page: null });
    expect(fake.pageCount(10)).toBe(1);
  });

  it('honours include and the older-tenant switches', async () => {
    expect((await list('per_page=5')).body['admin/users'][0]).not.toHaveProperty('team_memberships');
    fake.includeMemberships = false;
    expect((await list('per_page=5&include=team_memberships')).body['admin/users'][0]).not.toHaveProperty('team_memberships');
    fake.omitIsActive = true;
    fake.omitNextPageNumber = true;
    const p = await list('per_page=5');
    expect(p.body['admin/users'][0]).not.toHaveProperty('is_active');
    expect(p.body.meta).not.toHaveProperty('next_page_number');
    expect(p.body.meta.next_page).toContain('page=2');
  });
});

describe('auth and errors', () => {
  it('answers 401 for unknown or missing keys and 403 for weak keys, and logs the header', async () => {
    expect(await get('/api/v1/admin/users', 'nope')).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect(await get('/api/v1/admin/users/1', null)).toMatchObject({ status: 401 });
    expect(await get('/api/v1/admin/users', 'weak')).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    fake.validKeys.clear();
    expect((await get('/api/v1/admin/users')).status).toBe(401);
    expect(fake.requests.map((r) => [r.status, r.auth])).toEqual([
      [401, 'Bearer nope'],
      [401, undefined],
      [403, 'Bearer weak'],
      [401, 'Bearer good'],
    ]);
    fake.validKeys.add('good');
  });

  it('serves one user, 404 for a missing one and for unknown paths', async () => {
    const one = await get('/api/v1/admin/users/3?include=team_memberships');
    expect(one.body).toMatchObject({ id: 3, email: fake.users.get(3)!.email, team_memberships: expect.any(Array) });
    expect((await get('/api/v1/admin/users/3')).body).not.toHaveProperty('team_memberships');
    expect(await get('/api/v1/admin/users/999')).toMatchObject({ status: 404, body: { error: 'Not found' } });
    expect((await get('/api/v1/teams')).status).toBe(404);
  });

  it('injects queued faults with headers, matching and times', async () => {
    fake.faults.push({ match: (r) => r.page === 2, status: 429, headers: { 'Retry-After': '7' }, times: 2 });
    fake.faults.push({ match: (r) => r.userId === 4, status: 503, body: 'down' });
    const first = await list('per_page=20&page=2');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');
    expect((await list('per_page=20&page=1')).status).toBe(200);
    expect((await list('per_page=20&page=2')).status).toBe(429);
    expect((await list('per_page=20&page=2')).status).toBe(200);
    expect(await get('/api/v1/admin/users/4')).toMatchObject({ status: 503, text: 'down' });
    expect((await get('/api/v1/admin/users/4')).status).toBe(200);
    expect(fake.faults).toEqual([]);
  });

  it('answers 429 with Retry-After past the per-minute ceiling', async () => {
    fake.requestsPerMinute = 2;
    expect((await list('page=1')).status).toBe(200);
    expect((await list('page=1')).status).toBe(200);
    const limited = await list('page=1');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('caching and mutation', () => {
  it('serves unchanged pages from cache and invalidates on any mutation', async () => {
    const a = await list('per_page=10&page=1');
    const b = await list('per_page=10&page=1');
    expect(b.text).toBe(a.text);
    expect(fake.cacheStats).toEqual({ hits: 1, misses: 1 });

    fake.updateUser(1, { first_name: 'Renamed' });
    expect((await list('per_page=10&page=1')).body['admin/users'][0].first_name).toBe('Renamed');
    fake.users.delete(2); // direct Map mutation invalidates too
    const c = await list('per_page=10&page=1');
    expect(c.body['admin/users'].map((u: FakeUser) => u.id)).toEqual([1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(c.body.meta.count).toBe(44);
    fake.addUser({ ...fake.users.get(1)!, id: 0, email: 'zero@example.com' });
    expect((await list('per_page=10&page=1')).body['admin/users'][0].id).toBe(0);
    expect(fake.cacheStats.misses).toBe(4);
  });

  it('runs onPage between pages, before the next request is served', async () => {
    fake.onPage = async (page) => {
      if (page !== 1) return;
      await new Promise((r) => setTimeout(r, 20));
      fake.removeUser(1); // shifts user 21 onto page 1: the classic skip
    };
    const p1 = await list('per_page=20&page=1');
    const p2 = await list('per_page=20&page=2');
    expect(p1.body.meta.count).toBe(45);
    expect(p2.body.meta.count).toBe(44);
    expect(p2.body['admin/users'][0].id).toBe(22);
  });

  it('can drop the connection as a network fault and close with keep-alive sockets open', async () => {
    fake.faults.push({ status: 0 });
    await expect(fetch(`${fake.url}/api/v1/admin/users`)).rejects.toThrow();
    const other = await FakeTines.start();
    await fetch(`${other.url}/api/v1/admin/users`, { headers: { Authorization: 'Bearer test-key' } }).then((r) => r.text());
    const t0 = Date.now();
    await other.close();
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
