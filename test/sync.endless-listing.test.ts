// A sync against a listing that never ends (no meta.pages, no meta.count,
// next_page_number forever) fails with invalid_response or ends at the first
// empty page: the run is finished (never left `running`), nothing is removed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('a listing that never ends (%s)', (backend) => {
  let h: Harness;
  const present = async () => (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL')).n;
  const lastRun = () =>
    h.one<{ status: string; error_kind: string | null; error_message: string | null }>(
      'SELECT status, error_kind, error_message FROM sync_runs ORDER BY id DESC LIMIT 1',
    );

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 13 }));
    expect((await h.sync()).result).toBe('succeeded');
    expect(await present()).toBe(50);
  });
  afterAll(async () => h?.close());

  it('a proxy that drops `page` (page 1 again and again): failed, invalid_response, nothing removed', async () => {
    h.fake.reset();
    h.fake.omitTotals = true;
    h.fake.endlessPaging = 'repeat-first';
    h.fake.removeUser(50); // a real change that must not be applied from a broken listing
    const outcome = await h.sync();
    expect(outcome.result).toBe('failed');
    expect(outcome.errorKind).toBe('invalid_response');
    expect(outcome.message).toMatch(/repeats the users of page/);
    const listing = h.fake.requests.filter((r) => r.path === '/api/v1/admin/users');
    expect(listing.length).toBeLessThanOrEqual(3);
    expect(await lastRun()).toMatchObject({ status: 'failed', error_kind: 'invalid_response' });
    expect(await present()).toBe(50);
    expect((await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE status = 'running'`)).n).toBe(0);
  });

  it('pages past the end are empty but next_page_number goes on: the listing ends at the first empty page', async () => {
    h.fake.reset();
    h.fake.omitTotals = true;
    h.fake.endlessPaging = 'empty-after-end';
    const outcome = await h.sync();
    // 49 users on pages of 20: pages 1-3 hold them, page 4 is empty and ends the listing.
    const pages = h.fake.requests.filter((r) => r.path === '/api/v1/admin/users').map((r) => Number(r.query.page));
    expect(Math.max(...pages)).toBeLessThanOrEqual(5);
    expect(outcome.pagesFetched).toBe(4);
    // Without meta.count the listing cannot be checked for completeness: held, the user gone from Tines is not removed.
    expect(outcome).toMatchObject({ result: 'held', errorKind: 'inconsistent_listing', counts: { usersSeen: 49, usersRemoved: 0 } });
    expect(await present()).toBe(50);
    expect((await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE status = 'running'`)).n).toBe(0);
  });
});
