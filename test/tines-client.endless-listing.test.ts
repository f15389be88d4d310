// A listing whose meta has neither `pages` nor `count` and that keeps sending
// next_page_number (a proxy, or an older tenant that breaks the documented meta)
// is bounded: it ends at the first empty page, a page repeating the previous
// page's users is refused, and a fixed ceiling caps the pages; each refusal is
// invalid_response.
import { hash } from 'node:crypto';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { TinesRequestError } from '../src/errors.js';
import { MAX_LISTING_PAGES, USERS_PATH, type UsersPage } from '../src/tines/client.js';
import { BASE, makeClient, useNock } from './helpers/tines-client.js';

const users = (...ids: number[]) => ids.map((id) => ({ id, email: `u${id}@example.com`, is_active: true, team_memberships: [] }));

async function walk(gen: AsyncIterable<UsersPage>): Promise<{ pages: UsersPage[]; err: unknown }> {
  const pages: UsersPage[] = [];
  try {
    for await (const p of gen) pages.push(p);
  } catch (err) {
    return { pages, err };
  }
  return { pages, err: undefined };
}

function expectInvalid(err: unknown, message: RegExp): void {
  expect(err).toBeInstanceOf(TinesRequestError);
  expect((err as TinesRequestError).kind).toBe('invalid_response');
  expect((err as Error).message).toMatch(message);
}

useNock();

describe('a listing without meta.pages or meta.count that keeps sending next_page_number', () => {
  it('ends at the first empty page, whatever next_page_number says', async () => {
    const asked: number[] = [];
    nock(BASE)
      .get(USERS_PATH)
      .query(true)
      .times(20)
      .reply((uri) => {
        const page = Number(new URL(uri, BASE).searchParams.get('page'));
        asked.push(page);
        return [200, { 'admin/users': page <= 2 ? users(page * 2 - 1, page * 2) : [], meta: { current_page: page, next_page_number: page + 1, per_page: 2 } }];
      });
    const { pages, err } = await walk(makeClient().listUsers());
    expect(err).toBeUndefined();
    expect(pages.map((p) => [p.page, p.size])).toEqual([
      [1, 2],
      [2, 2],
      [3, 0],
    ]);
    // Page 4 may have been prefetched while page 3 was awaited, never later ones.
    expect(Math.max(...asked)).toBeLessThanOrEqual(4);
  });

  it('refuses a page that repeats the previous page’s users (a proxy that drops `page`)', async () => {
    let calls = 0;
    nock(BASE)
      .get(USERS_PATH)
      .query(true)
      .times(20)
      .reply((uri) => {
        calls++;
        const page = Number(new URL(uri, BASE).searchParams.get('page'));
        return [200, { 'admin/users': users(1, 2), meta: { current_page: page, next_page_number: page + 1, per_page: 2 } }];
      });
    const { pages, err } = await walk(makeClient().listUsers());
    expectInvalid(err, /pagination loop: page 2 repeats the users of page 1/);
    expect(pages.map((p) => p.page)).toEqual([1]);
    expect(calls).toBeLessThanOrEqual(3);
  });

  it('refuses a byte-identical repeat even when the caller skips parsing known pages', async () => {
    const body = { 'admin/users': users(1, 2), meta: { next_page_number: 2, per_page: 2 } };
    nock(BASE).get(USERS_PATH).query(true).times(20).reply(200, body);
    // The caller holds both pages as that very body.
    const held = { digest: `sha256:${hash('sha256', JSON.stringify(body), 'base64')}`, meta: { next_page_number: 2 }, size: 2 };
    const { pages, err } = await walk(
      makeClient().listUsers(undefined, {
        known: new Map([
          [1, held],
          [2, held],
        ]),
      }),
    );
    expectInvalid(err, /repeats the users of page 1/);
    expect(pages).toHaveLength(1);
  });

  it('stops at the page ceiling when every page is new: invalid_response', async () => {
    let calls = 0;
    nock(BASE)
      .get(USERS_PATH)
      .query(true)
      .times(50)
      .reply((uri) => {
        calls++;
        const page = Number(new URL(uri, BASE).searchParams.get('page'));
        return [200, { 'admin/users': users(page * 2 - 1, page * 2), meta: { next_page_number: page + 1 } }];
      });
    const { pages, err } = await walk(makeClient({ maxListingPages: 5 }).listUsers());
    expectInvalid(err, /beyond the 5 pages this listing may take/);
    expect(pages).toHaveLength(4);
    expect(calls).toBeLessThanOrEqual(6);
  });

  it('the ceiling without a total is 100,000 pages, and a total the tenant gives replaces it', async () => {
    expect(MAX_LISTING_PAGES).toBe(100_000);
    // meta.count 4 at 2 a page: 2 pages, so the bound is 2 * 2 + 10 = 14 requests, well under the client's ceiling of 1000.
    let calls = 0;
    nock(BASE)
      .get(USERS_PATH)
      .query(true)
      .times(50)
      .reply((uri) => {
        calls++;
        const page = Number(new URL(uri, BASE).searchParams.get('page'));
        return [200, { 'admin/users': users(page * 2 - 1, page * 2), meta: { count: 4, next_page_number: page + 1 } }];
      });
    const { err } = await walk(makeClient({ maxListingPages: 1000 }).listUsers());
    expectInvalid(err, /beyond the 14 pages/);
    expect(calls).toBeLessThanOrEqual(15);
  });
});
