// Pins how listUsers walks pages: next_page_number, else the next_page URL,
// else pages/count; prefetching; and loop/runaway detection.
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { TinesRequestError } from '../src/errors.js';
import { nextPageNumber, USERS_PATH, type UsersPage } from '../src/tines/client.js';
import { BASE, makeClient, pageQuery as q, useNock } from './helpers/tines-client.js';

const users = (...ids: number[]) => ids.map((id) => ({ id, email: `u${id}@example.com`, is_active: true, team_memberships: [] }));
const nextUrl = (page: number) => `${BASE}${USERS_PATH}?include=team_memberships&page=${page}&per_page=2`;

async function collect(gen: AsyncIterable<UsersPage>): Promise<UsersPage[]> {
  const pages: UsersPage[] = [];
  for await (const p of gen) pages.push(p);
  return pages;
}

async function collectUntilError(gen: AsyncIterable<UsersPage>): Promise<{ pages: UsersPage[]; err: unknown }> {
  const pages: UsersPage[] = [];
  try {
    for await (const p of gen) pages.push(p);
  } catch (err) {
    return { pages, err };
  }
  throw new Error('expected the listing to fail');
}

useNock();

describe('listUsers paging', () => {
  it('follows next_page_number until null', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { current_page: 1, next_page_number: 2, per_page: 2, pages: 3, count: 5 } })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta: { current_page: 2, next_page_number: 3, per_page: 2, pages: 3, count: 5 } })
      .get(USERS_PATH)
      .query(q(3))
      .reply(200, { 'admin/users': users(5), meta: { current_page: 3, next_page_number: null, per_page: 2, pages: 3, count: 5 } });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(pages.flatMap((p) => p.users.map((u) => u.id))).toEqual([1, 2, 3, 4, 5]);
    expect(pages[2]?.meta.count).toBe(5);
    expect(scope.isDone()).toBe(true);
  });

  it("accepts Tines' documented meta, where current_page is a URL (tines.com/docs/api/welcome)", async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, {
        'admin/users': users(1, 2),
        meta: { current_page: nextUrl(1), previous_page: null, next_page: nextUrl(2), next_page_number: 2, per_page: 2, pages: 2, count: 3 },
      })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, {
        'admin/users': users(3),
        meta: { current_page: nextUrl(2), previous_page: nextUrl(1), next_page: null, next_page_number: null, per_page: 2, pages: 2, count: 3 },
      });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2]);
    expect(pages[1]?.meta.count).toBe(3);
    expect(scope.isDone()).toBe(true);
  });

  it('next_page_number: null ends the listing even when pages says there are more', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page_number: null, pages: 3, count: 6 } });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1]);
  });

  it('follows the next_page URL when next_page_number is absent', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page: nextUrl(2), previous_page: null } })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta: { next_page: nextUrl(3), previous_page: nextUrl(1) } })
      .get(USERS_PATH)
      .query(q(3))
      // a full page, but next_page null: the end (no page 4 is requested)
      .reply(200, { 'admin/users': users(5, 6), meta: { next_page: null, previous_page: nextUrl(2) } });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(pages.flatMap((p) => p.users.map((u) => u.id))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(scope.isDone()).toBe(true);
  });

  it('uses pages when neither next_page_number nor next_page is sent (older tenants)', async () => {
    const meta = { per_page: 2, pages: 3, count: 6 };
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta })
      .get(USERS_PATH)
      .query(q(3))
      .reply(200, { 'admin/users': users(5, 6), meta });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(scope.isDone()).toBe(true);
  });

  it('uses count and per_page when only count is sent', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { count: 5 } })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta: { count: 5 } })
      .get(USERS_PATH)
      .query(q(3))
      .reply(200, { 'admin/users': users(5), meta: { count: 5 } });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(scope.isDone()).toBe(true);
  });

  it('without any meta, a short page is the last one', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2) })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3) });
    const pages = await collect(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1, 2]);
    expect(scope.isDone()).toBe(true);
  });

  it('an empty first page is a complete, empty listing', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': [], meta: { count: 0, pages: 0 } });
    const pages = await collect(makeClient().listUsers());
    expect(pages).toHaveLength(1);
    expect(pages[0]?.users).toEqual([]);
  });

  it('prefetches page k+1 while the caller handles page k', async () => {
    const scope = nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page_number: 2 } });
    const page2 = nock(BASE)
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3), meta: { next_page_number: null } });
    const gen = makeClient().listUsers();
    const first = await gen.next();
    expect(first.value?.page).toBe(1);
    await new Promise((r) => setTimeout(r, 150)); // "handling" page 1
    expect(page2.isDone()).toBe(true);
    const second = await gen.next();
    expect(second.value?.page).toBe(2);
    expect((await gen.next()).done).toBe(true);
    expect(scope.isDone()).toBe(true);
  });
});

describe('pagination loop detection', () => {
  function expectLoopError(err: unknown): void {
    expect(err).toBeInstanceOf(TinesRequestError);
    expect((err as TinesRequestError).kind).toBe('invalid_response');
    expect((err as Error).message).toMatch(/pagination loop/);
  }

  it('a page pointing back to an earlier page throws invalid_response', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page_number: 2 } })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta: { next_page_number: 1 } });
    const { pages, err } = await collectUntilError(makeClient().listUsers());
    expect(pages.map((p) => p.page)).toEqual([1]);
    expectLoopError(err);
  });

  it('a page pointing to itself throws invalid_response', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page_number: 1 } });
    const { pages, err } = await collectUntilError(makeClient().listUsers());
    expect(pages).toEqual([]);
    expectLoopError(err);
  });

  it('a next_page URL pointing back throws invalid_response', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page: nextUrl(2) } })
      .get(USERS_PATH)
      .query(q(2))
      .reply(200, { 'admin/users': users(3, 4), meta: { next_page: nextUrl(1) } });
    const { err } = await collectUntilError(makeClient().listUsers());
    expectLoopError(err);
  });

  it('a next page number below 1 throws invalid_response', async () => {
    nock(BASE)
      .get(USERS_PATH)
      .query(q(1))
      .reply(200, { 'admin/users': users(1, 2), meta: { next_page_number: 0 } });
    const { err } = await collectUntilError(makeClient().listUsers());
    expectLoopError(err);
  });

  it('a listing that runs far past meta.pages is stopped', async () => {
    let calls = 0;
    nock(BASE)
      .get(USERS_PATH)
      .query(true)
      .times(50)
      .reply((uri) => {
        calls++;
        const page = Number(new URL(uri, BASE).searchParams.get('page'));
        return [200, { 'admin/users': users(page * 2 - 1, page * 2), meta: { pages: 1, count: 2, next_page_number: page + 1 } }];
      });
    const { pages, err } = await collectUntilError(makeClient().listUsers());
    expectLoopError(err);
    expect(pages.length).toBeLessThan(15);
    expect(calls).toBeLessThan(16);
  });
});

describe('nextPageNumber', () => {
  const page = (p: number, n: number, meta: UsersPage['meta']): UsersPage => {
    const raw = Array.from({ length: n }, (_, i) => ({ id: i }));
    return { page: p, raw, ids: raw.map((u) => u.id), size: n, meta, users: [] };
  };
  it.each<[string, UsersPage, number | null]>([
    ['next_page_number wins over next_page', page(1, 2, { next_page_number: 5, next_page: nextUrl(2) }), 5],
    ['next_page_number null ends', page(1, 2, { next_page_number: null, next_page: nextUrl(2), pages: 9 }), null],
    ['next_page URL', page(1, 2, { next_page: nextUrl(7) }), 7],
    ['next_page null ends', page(1, 2, { next_page: null, pages: 9 }), null],
    ['next_page empty string ends', page(1, 2, { next_page: '' }), null],
    ['next_page without page= falls back to pages', page(1, 2, { next_page: 'https://x/y', pages: 3 }), 2],
    ['pages: last page', page(3, 2, { pages: 3 }), null],
    ['count with meta per_page', page(2, 3, { count: 7, per_page: 3 }), 3],
    ['count exactly reached', page(2, 3, { count: 6, per_page: 3 }), null],
    ['no meta, full page', page(1, 2, {}), 2],
    ['no meta, short page', page(1, 1, {}), null],
    ['empty page, no links', page(2, 0, { pages: 5 }), null],
  ])('%s', (_name, current, want) => {
    expect(nextPageNumber(current, 2)).toBe(want);
  });
});
