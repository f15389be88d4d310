// A sync that would remove more than REMOVAL_GUARD_PERCENT of present users
// and more than REMOVAL_GUARD_MIN of them is held, with no confirmation calls;
// --allow-mass-removal lifts it for one run.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { exitCodeFor } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('removal guard (%s)', (backend) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(backend, generateUsers(50, { seed: 9 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterEach(() => h?.close());

  const removeFirst = (n: number) => [...h.fake.users.keys()].slice(0, n).forEach((id) => h.fake.removeUser(id));
  const present = async () => (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL')).n;
  const confirmCalls = (from: number) => h.fake.requests.slice(from).filter((r) => /\/admin\/users\/\d+$/.test(r.path)).length;

  it('holds a mass removal without calling Tines for each user, then --allow-mass-removal applies it', async () => {
    removeFirst(15); // 30% and 15 users: over both thresholds
    const before = h.fake.requests.length;
    const held = await h.sync();
    expect(held).toMatchObject({ result: 'held', errorKind: 'removal_guard' });
    expect(exitCodeFor(held)).toBe(4);
    expect(held.message).toMatch(/--allow-mass-removal/);
    expect(confirmCalls(before)).toBe(0);
    expect(await present()).toBe(50);

    const from = h.fake.requests.length;
    const allowed = await h.sync({ allowMassRemoval: true });
    expect(allowed.result).toBe('succeeded');
    expect(allowed.counts.usersRemoved).toBe(15);
    expect(confirmCalls(from)).toBe(15);
    expect(await present()).toBe(35);
  });

  it('removes normally at exactly the percentage threshold', async () => {
    removeFirst(10); // 20% is not more than 20%
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
    expect(o.counts.usersRemoved).toBe(10);
  });

  it('removes normally when the count is within REMOVAL_GUARD_MIN even over the percentage', async () => {
    removeFirst(12);
    const o = await h.sync({}, { REMOVAL_GUARD_MIN: '12' });
    expect(o.result).toBe('succeeded');
    expect(o.counts.usersRemoved).toBe(12);
  });

  it('honours a lowered REMOVAL_GUARD_PERCENT', async () => {
    removeFirst(6);
    const o = await h.sync({}, { REMOVAL_GUARD_PERCENT: '5', REMOVAL_GUARD_MIN: '2' });
    expect(o).toMatchObject({ result: 'held', errorKind: 'removal_guard' });
    expect(await present()).toBe(50);
  });
});
