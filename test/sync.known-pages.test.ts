// A page that comes back byte for byte as the last committed listing applied it
// is only recorded as seen; any change to a page, or a listing that showed a user
// twice, sends the sync back to checking every user of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('known pages (%s)', (backend) => {
  let h: Harness;
  const shipped = () => {
    const line = h.logs
      .parsed()
      .filter((l) => l.msg === 'sync succeeded' || String(l.msg).startsWith('sync held'))
      .pop();
    return line?.usersShipped;
  };
  const remembered = async () => (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM listing_pages')).n;

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 41 })); // 3 pages of 20
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(() => h?.close());

  it('a first sync remembers every page, and an unchanged resync ships no user', async () => {
    expect(await remembered()).toBe(3);
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
    expect(shipped()).toBe(0);
  });

  it('a change on one page is found and applied; the other pages stay known', async () => {
    const id = [...h.fake.users.keys()].sort((a, b) => a - b)[25]!; // page 2
    h.fake.updateUser(id, { last_name: 'Changed-On-Page-Two' });
    const o = await h.sync();
    expect(o.counts.usersUpdated).toBe(1);
    expect(shipped()).toBe(1);
    const row = await h.one<{ last_name: string }>('SELECT last_name FROM tines_users WHERE tines_user_id = $1', [id]);
    expect(row.last_name).toBe('Changed-On-Page-Two');
    // And the next listing knows the new page 2.
    await h.sync();
    expect(shipped()).toBe(0);
  });

  it('pages are not trusted after anything else wrote the users (an operator deleting rows)', async () => {
    await h.sync();
    expect(shipped()).toBe(0);
    await h.db.query('DELETE FROM team_memberships');
    await h.db.query('DELETE FROM tines_users');
    const o = await h.sync();
    expect(o.counts.usersAdded).toBe(50);
    expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL')).n).toBe(50);
  });

  it('pages are not trusted after an operator edited a user in place (the count of users unchanged)', async () => {
    await h.sync();
    expect(shipped()).toBe(0);
    const id = [...h.fake.users.keys()].sort((a, b) => a - b)[5]!;
    await h.db.query(`UPDATE tines_users SET email = 'edited-by-hand@example.com' WHERE tines_user_id = $1`, [id]);
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
    expect(o.counts.usersUpdated).toBe(1); // put back as Tines has it
    const row = await h.one<{ email: string }>('SELECT email FROM tines_users WHERE tines_user_id = $1', [id]);
    expect(row.email).toBe(h.fake.users.get(id)!.email);
  });

  it('a run held by the removal guard is not a baseline: the same listing again is held again', async () => {
    const ids = [...h.fake.users.keys()].sort((a, b) => a - b);
    const gone = ids.slice(0, 12); // over 20% of 50 and over 10
    const saved = gone.map((id) => h.fake.users.get(id)!);
    for (const id of gone) h.fake.removeUser(id);
    const first = await h.sync();
    expect(first.result).toBe('held');
    expect(first.errorKind).toBe('removal_guard');
    const again = await h.sync();
    expect(again.result).toBe('held');
    expect(again.counts.removalCandidates).toBe(12);
    for (const u of saved) h.fake.addUser(u);
    expect((await h.sync()).result).toBe('succeeded');
  });

  it('a listing that showed a user twice is not remembered, so the next sync checks every user', async () => {
    const ids = [...h.fake.users.keys()].sort((a, b) => a - b);
    const [newcomer] = generateUsers(1, { startId: 1, seed: 5 }); // sorts first: shifts everyone down one place
    const fresh = { ...newcomer!, id: 0, email: 'zero@example.com' };
    h.fake.onPage = (page) => {
      if (page === 1) h.fake.addUser(fresh); // ids[19] is listed again on page 2
    };
    const o = await h.sync();
    h.fake.onPage = undefined;
    expect(o.result).toBe('held'); // the count moved during the listing
    expect(ids.length).toBe(50);
    expect(await remembered()).toBe(0);
    const next = await h.sync();
    expect(next.result).toBe('succeeded');
    expect(next.counts.usersAdded).toBe(1);
    expect(await remembered()).toBe(3);
  });
});
