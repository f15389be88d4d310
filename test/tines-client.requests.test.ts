// Pins what the client sends (auth header, query) and how it reads users:
// liberal parsing, getUser, checkAccess, and the response/retry callbacks.
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { TinesAuthError, TinesRequestError } from '../src/errors.js';
import { USERS_PATH, type TinesClientOptions } from '../src/tines/client.js';
import { BASE, caught, KEY, makeClient as baseClient, pageQuery as q, useNock } from './helpers/tines-client.js';

/** One retry unless a test says otherwise. */
const makeClient = (over: Partial<TinesClientOptions> = {}) => baseClient({ maxRetries: 1, ...over });

useNock();

describe('what the client sends', () => {
  it('sends the key as a Bearer token and asks for JSON', async () => {
    const scope = nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}`, accept: /application\/json/ } })
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': [], meta: { next_page_number: null } });
    const page = await makeClient().fetchUsersPage(1);
    expect(page.users).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('asks for per_page = pageSize, the page and include=team_memberships (exactly)', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query({ per_page: '137', page: '3', include: 'team_memberships' })
      .reply(200, { 'admin/users': [{ id: 1 }], meta: {} });
    const page = await makeClient({ pageSize: 137 }).fetchUsersPage(3);
    expect(page.page).toBe(3);
    expect(page.users.map((u) => u.id)).toEqual([1]);
    expect(scope.isDone()).toBe(true);
  });

  it('honours a base URL with a port (loopback http)', async () => {
    const scope = nock('http://127.0.0.1:9').get(`${USERS_PATH}/5`).query({ include: 'team_memberships' }).reply(200, { id: 5 });
    const user = await makeClient({ baseUrl: 'http://127.0.0.1:9' }).getUser(5);
    expect(user?.id).toBe(5);
    expect(scope.isDone()).toBe(true);
  });
});

describe('liberal parsing of users', () => {
  it('accepts ids as numeric strings and keeps the object as sent in raw', async () => {
    const sent = {
      id: '42',
      email: 'ada@example.com',
      first_name: 'Ada',
      last_name: 'Lovelace',
      admin: true,
      is_active: true,
      tenant_permissions: ['MANAGE_TEAMS'],
      scim_uid: 'scim-42',
      created_at: '2024-01-02T03:04:05Z',
      updated_at: '2024-02-03T04:05:06.789+01:00',
      last_seen: null,
      something_new: { nested: 1 },
      team_memberships: [{ team_id: '7', team_name: 'Ops', role: 'EDITOR' }],
    };
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': [sent], meta: {} });
    const [u] = (await makeClient().fetchUsersPage(1)).users;
    expect(u).toEqual({
      id: 42,
      fields: {
        email: 'ada@example.com',
        first_name: 'Ada',
        last_name: 'Lovelace',
        admin: true,
        is_active: true,
        tenant_permissions: ['MANAGE_TEAMS'],
        scim_uid: 'scim-42',
        tines_created_at: '2024-01-02T03:04:05.000Z',
        tines_updated_at: '2024-02-03T03:05:06.789Z',
        last_seen_at: null,
      },
      memberships: [{ teamId: 7, teamName: 'Ops', role: 'EDITOR' }],
      raw: sent,
    });
  });

  it('a missing is_active is null (never false) and a missing team_memberships is null', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': [{ id: 43 }], meta: {} });
    const [u] = (await makeClient().fetchUsersPage(1)).users;
    expect(u?.fields.is_active).toBeNull();
    expect(u?.memberships).toBeNull();
    expect(u?.fields.admin).toBeNull();
    expect(u?.fields.email).toBeNull();
    expect(u?.fields.tenant_permissions).toBeNull();
    expect(u?.fields.tines_created_at).toBeNull();
  });

  it('an empty team_memberships array is [] and is_active false stays false', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': [{ id: 44, is_active: false, team_memberships: [] }], meta: {} });
    const [u] = (await makeClient().fetchUsersPage(1)).users;
    expect(u?.memberships).toEqual([]);
    expect(u?.fields.is_active).toBe(false);
  });

  it('custom roles pass through, a team listed twice keeps its last entry, unparseable timestamps become null', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, {
        'admin/users': [
          {
            id: 45,
            created_at: 'not a date',
            team_memberships: [
              { team_id: 1, team_name: 'A', role: 'VIEWER' },
              { team_id: 2, team_name: 'B', role: 'Release managers' },
              { team_id: 1, team_name: 'A', role: 'TEAM_ADMIN' },
              { team_id: 3 },
            ],
          },
        ],
        meta: {},
      });
    const [u] = (await makeClient().fetchUsersPage(1)).users;
    expect(u?.fields.tines_created_at).toBeNull();
    expect(u?.raw.created_at).toBe('not a date');
    expect(u?.memberships).toEqual([
      { teamId: 1, teamName: 'A', role: 'TEAM_ADMIN' },
      { teamId: 2, teamName: 'B', role: 'Release managers' },
      { teamId: 3, teamName: null, role: null },
    ]);
  });

  it('accepts a "users" array when "admin/users" is absent, and string page numbers in meta', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { users: [{ id: 1 }, { id: 2 }], meta: { next_page_number: '2', count: '3', pages: '2' } });
    const page = await makeClient().fetchUsersPage(1);
    expect(page.users.map((u) => u.id)).toEqual([1, 2]);
    expect(page.meta).toMatchObject({ next_page_number: 2, count: 3, pages: 2 });
  });
});

describe('getUser', () => {
  it('returns the user', async () => {
    nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}` } })
      .get(`${USERS_PATH}/42`)
      .query({ include: 'team_memberships' })
      .reply(200, { id: 42, email: 'a@example.com' });
    const u = await makeClient().getUser(42);
    expect(u?.id).toBe(42);
    expect(u?.fields.email).toBe('a@example.com');
  });

  it('returns null on 404, without retrying', async () => {
    let calls = 0;
    nock(BASE)
      .get(`${USERS_PATH}/42`)
      .query({ include: 'team_memberships' })
      .times(3)
      .reply(() => {
        calls++;
        return [404, { error: 'not found' }];
      });
    expect(await makeClient({ maxRetries: 2 }).getUser(42)).toBeNull();
    expect(calls).toBe(1);
  });

  it('accepts the user wrapped in a single key', async () => {
    nock(BASE)
      .get(`${USERS_PATH}/42`)
      .query({ include: 'team_memberships' })
      .reply(200, { user: { id: 42, is_active: true } });
    const u = await makeClient().getUser(42);
    expect(u?.id).toBe(42);
    expect(u?.fields.is_active).toBe(true);
  });

  it('rejects an answer about another user as invalid_response', async () => {
    nock(BASE).get(`${USERS_PATH}/42`).query({ include: 'team_memberships' }).reply(200, { id: 43 });
    const err = await caught(makeClient().getUser(42));
    expect(err).toBeInstanceOf(TinesRequestError);
    expect((err as TinesRequestError).kind).toBe('invalid_response');
  });

  it('rejects a non-JSON or invalid user body as invalid_response', async () => {
    nock(BASE).get(`${USERS_PATH}/42`).query({ include: 'team_memberships' }).reply(200, '<html>oops</html>');
    nock(BASE).get(`${USERS_PATH}/43`).query({ include: 'team_memberships' }).reply(200, { id: 'forty-three' });
    for (const id of [42, 43]) {
      const err = await caught(makeClient().getUser(id));
      expect(err).toBeInstanceOf(TinesRequestError);
      expect((err as TinesRequestError).kind).toBe('invalid_response');
    }
  });

  it('raises TinesAuthError on 401', async () => {
    nock(BASE).get(`${USERS_PATH}/42`).query({ include: 'team_memberships' }).reply(401, { error: 'unauthorized' });
    const err = await caught(makeClient().getUser(42));
    expect(err).toBeInstanceOf(TinesAuthError);
    expect((err as TinesAuthError).status).toBe(401);
  });
});

describe('checkAccess', () => {
  it('makes one authenticated call with per_page=1 and reports the count', async () => {
    const scope = nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}` } })
      .get(USERS_PATH)
      .query(q(1, 1))
      .reply(200, { 'admin/users': [{ id: 1 }], meta: { count: 1234, next_page_number: 2 } });
    expect(await makeClient().checkAccess()).toEqual({ count: 1234 });
    expect(scope.isDone()).toBe(true);
  });

  it('reports count null when meta has none', async () => {
    nock(BASE).get(USERS_PATH).query(q(1, 1)).reply(200, { 'admin/users': [] });
    expect(await makeClient().checkAccess()).toEqual({ count: null });
  });

  it('raises TinesAuthError 403 when the key is refused', async () => {
    nock(BASE).get(USERS_PATH).query(q(1, 1)).reply(403, 'Forbidden');
    const err = await caught(makeClient().checkAccess());
    expect(err).toBeInstanceOf(TinesAuthError);
    expect((err as TinesAuthError).status).toBe(403);
    expect((err as TinesAuthError).kind).toBe('auth');
  });
});

describe('callbacks', () => {
  it('onResponse sees every status (0 for a network failure) and onRetry every retry kind', async () => {
    const statuses: number[] = [];
    const retries: string[] = [];
    nock(BASE).get(`${USERS_PATH}/1`).query({ include: 'team_memberships' }).reply(503);
    nock(BASE)
      .get(`${USERS_PATH}/1`)
      .query({ include: 'team_memberships' })
      .replyWithError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    nock(BASE).get(`${USERS_PATH}/1`).query({ include: 'team_memberships' }).reply(429, '', { 'Retry-After': '0' });
    nock(BASE).get(`${USERS_PATH}/1`).query({ include: 'team_memberships' }).reply(200, { id: 1 });
    const origRandom = Math.random;
    Math.random = () => 0; // no backoff wait
    try {
      const c = makeClient({ maxRetries: 3, onResponse: (s) => statuses.push(s), onRetry: (k) => retries.push(k) });
      expect((await c.getUser(1))?.id).toBe(1);
    } finally {
      Math.random = origRandom;
    }
    expect(statuses).toEqual([503, 0, 429, 200]);
    expect(retries).toEqual(['server', 'network', 'rate_limited']);
  });
});
