// Pins that malformed pages raise TinesRequestError kind invalid_response,
// are not retried, and say what was wrong.
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { TinesRequestError } from '../src/errors.js';
import { USERS_PATH, type TinesClientOptions } from '../src/tines/client.js';
import { BASE, caught, makeClient as baseClient, pageQuery as q, useNock } from './helpers/tines-client.js';

/** Up to three retries, so a malformed page that were retried would show. */
const makeClient = (over: Partial<TinesClientOptions> = {}) => baseClient({ maxRetries: 3, ...over });

/** Serves `body` for page 1 up to 5 times, counting calls; returns the error fetchUsersPage(1) raises. */
async function pageError(body: string | object, status = 200, headers: Record<string, string> = {}) {
  let calls = 0;
  nock(BASE)
    .get(USERS_PATH)
    .query(q(1))
    .times(5)
    .reply(() => {
      calls++;
      return [status, body, headers];
    });
  const err = await caught(makeClient().fetchUsersPage(1));
  expect(err).toBeInstanceOf(TinesRequestError);
  expect((err as TinesRequestError).kind).toBe('invalid_response');
  expect(calls).toBe(1); // never retried
  return err as TinesRequestError;
}

useNock();

describe('malformed pages', () => {
  it('a body that is not JSON', async () => {
    const err = await pageError('<html><body>Maintenance</body></html>', 200, { 'Content-Type': 'text/html' });
    expect(err.message).toMatch(/not JSON/);
    expect(err.status).toBe(200);
  });

  it('a truncated JSON body', async () => {
    const err = await pageError('{"admin/users": [{"id": 1}', 200, { 'Content-Type': 'application/json' });
    expect(err.message).toMatch(/not JSON/);
  });

  it.each<[string, string | object]>([
    ['an empty object', {}],
    ['JSON null', 'null'],
    ['a bare array', [{ id: 1 }]],
    ['"admin/users" not an array', { 'admin/users': { id: 1 } }],
    ['"admin/users" null', { 'admin/users': null }],
  ])('%s: no "admin/users" array', async (_name, body) => {
    const err = await pageError(body, 200, { 'Content-Type': 'application/json' });
    expect(err.message).toMatch(/"admin\/users"/);
  });

  it.each<[string, unknown]>([
    ['a non-numeric string id', 'abc'],
    ['a negative id', -1],
    ['a fractional id', 1.5],
    ['a null id', null],
    ['an object id', { id: 1 }],
  ])('a user with %s', async (_name, id) => {
    const err = await pageError({ 'admin/users': [{ id: 1 }, { id }], meta: {} });
    expect(err.message).toMatch(/user 1/);
    expect(err.message).toMatch(/id/);
  });

  it('a user without an id', async () => {
    const err = await pageError({ 'admin/users': [{ email: 'x@example.com' }], meta: {} });
    expect(err.message).toMatch(/user 0: id/);
  });

  it('a user that is not an object', async () => {
    await pageError({ 'admin/users': ['alice'], meta: {} });
  });

  it('a user with a malformed team membership', async () => {
    const err = await pageError({ 'admin/users': [{ id: 1, team_memberships: [{ team_name: 'no id' }] }], meta: {} });
    expect(err.message).toMatch(/team_memberships/);
  });

  it('tenant_permissions that is not a string array', async () => {
    await pageError({ 'admin/users': [{ id: 1, tenant_permissions: 'ADMIN' }], meta: {} });
  });

  it.each<[string, object]>([
    ['count as a word', { count: 'many' }],
    ['pages as an object', { pages: {} }],
    ['next_page_number as a word', { next_page_number: 'two' }],
  ])('meta with %s', async (_name, meta) => {
    const err = await pageError({ 'admin/users': [{ id: 1 }], meta });
    expect(err.message).toMatch(/meta/);
  });

  it('a 404 for the listing', async () => {
    const err = await pageError({ error: 'not found' }, 404);
    expect(err.status).toBe(404);
  });

  it('a 2xx other than 200 with a valid body is accepted', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(203, { 'admin/users': [{ id: 1 }], meta: {} });
    const page = await makeClient().fetchUsersPage(1);
    expect(page.users).toHaveLength(1);
  });
});
