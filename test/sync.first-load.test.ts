// A connector's first sync stages its users while the listing runs and
// applies them in one short transaction at the end, on both backends: a user listed twice is stored once with its later
// sighting, a failure commits nothing, progress shows while it runs, and every
// row goes with its connector.
import { afterEach, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

const count = async (h: Harness, table: string) => (await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).n;

describe.each(backends())('first load (%s)', (backend) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('records when the run really finished', async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 11 })); // 3 pages of 20
    h.fake.latencyMs = 100;
    const started = Date.now();
    expect((await h.sync()).result).toBe('succeeded');
    const elapsed = Date.now() - started;
    const run = await h.one<{ took_ms: number }>('SELECT (extract(epoch FROM finished_at - started_at) * 1000)::int AS took_ms FROM sync_runs');
    expect(run.took_ms).toBeGreaterThanOrEqual(150); // at least the two rounds of latency it waited (later pages are requested ahead)
    expect(run.took_ms).toBeLessThanOrEqual(elapsed + 50);
    const c = await h.one<{ ok: boolean }>(
      'SELECT last_success_at = last_sync_at AND last_success_at >= (SELECT finished_at FROM sync_runs) AS ok FROM connectors',
    );
    expect(c.ok).toBe(true);
  });

  it('a user the listing shows twice (a newcomer shifted the pages) is stored once, as last seen', async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 11 })); // 3 pages of 20
    const fake = h.fake;
    const ids = [...fake.users.keys()].sort((a, b) => a - b);
    const shifted = ids[19]!; // last on page 1, first on page 2 once a user sorts in before it
    fake.onPage = (page) => {
      if (page !== 1) return;
      fake.addUser({ ...generateUsers(1, { startId: 1, seed: 3 })[0]!, id: 0, email: 'newcomer@example.com' });
      fake.updateUser(shifted, { last_name: 'Seen-Again', team_memberships: [{ team_id: 4242, team_name: 'Moved', role: 'EDITOR' }] });
    };
    const o = await h.sync();
    fake.onPage = undefined;
    expect(o.result).toBe('held'); // the count moved during the listing
    expect(o.errorKind).toBe('inconsistent_listing');
    expect(o.counts.usersAdded).toBe(50);
    expect(o.counts.usersSeen).toBe(50);
    expect(await count(h, 'tines_users')).toBe(50);
    const row = await h.one<{ last_name: string }>('SELECT last_name FROM tines_users WHERE tines_user_id = $1', [shifted]);
    expect(row.last_name).toBe('Seen-Again');
    const teams = await h.rows<{ team_id: number }>('SELECT team_id FROM team_memberships WHERE tines_user_id = $1', [shifted]);
    expect(teams.map((t) => Number(t.team_id))).toEqual([4242]);
    // Both backends record what staging does: one user_added per user, with its latest values, and nothing else.
    expect(o.counts.usersUpdated).toBe(0);
    expect(o.counts.membershipsRemoved).toBe(0);
    expect(o.counts.membershipsUpdated).toBe(0);
    const kinds = await h.rows<{ kind: string; n: number }>('SELECT kind, count(*)::int AS n FROM change_events GROUP BY kind ORDER BY kind');
    const memberships = await count(h, 'team_memberships');
    expect(kinds).toEqual(
      [
        { kind: 'membership_added', n: memberships },
        { kind: 'user_added', n: 50 },
      ].filter((k) => k.n > 0),
    );
    expect(o.counts.membershipsAdded).toBe(memberships);
    // A listing that showed a user twice is not remembered; the next one finds the newcomer.
    expect(await count(h, 'listing_pages')).toBe(0);
    const next = await h.sync();
    expect(next.result).toBe('succeeded');
    expect(next.counts.usersAdded).toBe(1);
    expect(await count(h, 'listing_pages')).toBe(3);
  });

  it('a user shifted onto the next batch (written pages before it) is stored once, as last seen', async () => {
    h = await createHarness(backend, generateUsers(2600, { seed: 16 })); // 6 pages of 500; pages 1-4 are written as one batch
    const fake = h.fake;
    const ids = [...fake.users.keys()].sort((a, b) => a - b);
    const shifted = ids[1999]!; // last on page 4, first on page 5 once a user sorts in before it
    fake.onPage = (page) => {
      if (page !== 4) return;
      fake.addUser({ ...generateUsers(1, { startId: 1, seed: 4 })[0]!, id: 0, email: 'newcomer@example.com' });
      fake.updateUser(shifted, { last_name: 'Seen-Again' });
    };
    const o = await h.sync({}, { TINES_PAGE_SIZE: '500' });
    fake.onPage = undefined;
    expect(o.result).toBe('held'); // the count moved during the listing
    expect(o.counts.usersAdded).toBe(2600);
    expect(await count(h, 'tines_users')).toBe(2600);
    const row = await h.one<{ last_name: string }>('SELECT last_name FROM tines_users WHERE tines_user_id = $1', [shifted]);
    expect(row.last_name).toBe('Seen-Again');
    const added = await h.rows<{ n: number }>(
      "SELECT count(*)::int AS n FROM change_events WHERE kind = 'user_added' GROUP BY tines_user_id HAVING count(*) > 1",
    );
    expect(added).toEqual([]);
    expect(await count(h, "change_events WHERE kind = 'user_added'")).toBe(2600);
    expect(await count(h, "change_events WHERE kind = 'membership_added'")).toBe(await count(h, 'team_memberships'));
  });

  it('a listing not in id order is stored whole, each user once, with nothing taken back', async () => {
    const users = generateUsers(2600, { seed: 17 });
    h = await createHarness(backend, users);
    // Pages in descending id order (Tines documents no order): every id after the first is below one
    // already written, so later batches are checked against rows written before them, and none repeats.
    const desc = [...users].sort((a, b) => b.id - a.id);
    for (let page = 1; page <= 6; page++) {
      const list = desc.slice((page - 1) * 500, page * 500);
      const meta = { current_page: page, next_page_number: page < 6 ? page + 1 : null, per_page: 500, pages: 6, count: 2600 };
      h.fake.faults.push({ match: (r) => r.page === page, status: 200, body: JSON.stringify({ 'admin/users': list, meta }) });
    }
    const o = await h.sync({}, { TINES_PAGE_SIZE: '500' });
    expect(o.result).toBe('succeeded');
    expect(o.counts.usersAdded).toBe(2600);
    expect(o.counts.usersUpdated).toBe(0);
    expect(await count(h, 'tines_users')).toBe(2600);
    expect(await count(h, "change_events WHERE kind = 'user_added'")).toBe(2600);
    expect(await count(h, "change_events WHERE kind NOT IN ('user_added', 'membership_added')")).toBe(0);
    expect(o.counts.membershipsAdded).toBe(await count(h, 'team_memberships'));
    // Nothing was taken back: only a listing without repeats is remembered page by page.
    expect(await count(h, 'listing_pages')).toBe(6);
  });

  it('a first sync that fails on a later page commits no user, membership or event', async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 12 }));
    h.fake.faults.push({ match: (r) => r.page === 2, status: 200, body: '{"admin/users": [{"id": "not a number"}], "meta": {}}' });
    const o = await h.sync();
    expect(o.result).toBe('failed');
    expect(o.errorKind).toBe('invalid_response');
    expect(await count(h, 'tines_users')).toBe(0);
    expect(await count(h, 'team_memberships')).toBe(0);
    expect(await count(h, 'change_events')).toBe(0);
    const run = await h.one<{ status: string; pages_fetched: number }>('SELECT status, pages_fetched FROM sync_runs');
    expect(run.status).toBe('failed');
    expect(run.pages_fetched).toBeGreaterThanOrEqual(1);
    const next = await h.sync();
    expect(next.result).toBe('succeeded');
    expect(next.counts.usersAdded).toBe(50);
  });

  it('a failure after whole batches were written still commits nothing of them', async () => {
    h = await createHarness(backend, generateUsers(2600, { seed: 15 })); // 6 pages of 500; a batch is written after page 4
    h.fake.faults.push({ match: (r) => r.page === 5, status: 200, body: '{"admin/users": [{"id": -1}], "meta": {}}' });
    const o = await h.sync({}, { TINES_PAGE_SIZE: '500' });
    expect(o.result).toBe('failed');
    for (const table of ['tines_users', 'team_memberships', 'change_events']) expect(await count(h, table), table).toBe(0);
    const next = await h.sync({}, { TINES_PAGE_SIZE: '500' });
    expect(next.result).toBe('succeeded');
    expect(next.counts.usersAdded).toBe(2600);
  });

  it('shows its progress in sync_runs while it runs, and asks for each page once', async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 13 }));
    const harness = h;
    let seenRunning: { status: string; pages_fetched: number } | undefined;
    // While this hook runs after page 1, the fake holds the pages the client asks for next: the run cannot finish meanwhile.
    harness.fake.onPage = async (page) => {
      if (page !== 1 || backend === 'embedded') return; // the embedded database has one session: nothing reads beside the sync
      for (let i = 0; i < 200 && !(seenRunning && seenRunning.pages_fetched >= 1); i++) {
        seenRunning = await harness.one('SELECT status, pages_fetched FROM sync_runs ORDER BY id DESC LIMIT 1');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const o = await harness.sync();
    harness.fake.onPage = undefined;
    expect(o.result).toBe('succeeded');
    if (backend === 'postgres') {
      expect(seenRunning?.status).toBe('running');
      expect(seenRunning?.pages_fetched).toBeGreaterThanOrEqual(1);
    }
    const pages = harness.fake.requests.filter((r) => r.path.endsWith('/admin/users')).map((r) => Number(r.query.page));
    expect(pages.sort()).toEqual([1, 2, 3]);
  });

  it("a user's memberships go with the user, and every row of a connector with the connector", async () => {
    h = await createHarness(backend, generateUsers(30, { seed: 14 }));
    expect((await h.sync()).result).toBe('succeeded');
    expect(await count(h, 'tines_users')).toBe(30);
    // An operator deleting users takes their memberships along, and the next sync loads them again.
    await h.db.query('DELETE FROM tines_users');
    expect(await count(h, 'team_memberships')).toBe(0);
    const reload = await h.sync();
    expect(reload.result).toBe('succeeded');
    expect(reload.counts.usersAdded).toBe(30);
    await h.db.query('DELETE FROM connectors');
    for (const table of ['tines_users', 'team_memberships', 'change_events', 'sync_runs', 'listing_pages']) {
      expect(await count(h, table), table).toBe(0);
    }
  });
});
