// Users missing from a listing are confirmed one GET each; when one of those
// calls fails for good, the run fails and the other workers stop calling Tines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('confirmation calls (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(100, { seed: 31 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(() => h?.close());

  it('a confirmation that fails after its retries fails the run, removes nothing, and stops the other calls', async () => {
    const gone = [...h.fake.users.keys()].sort((a, b) => a - b).slice(10, 25); // 15%: under the guard
    for (const id of gone) h.fake.removeUser(id);
    h.fake.latencyMs = 20;
    h.fake.faults.push({ match: (r) => r.userId === gone[0], status: 500, times: 100 });
    const before = h.fake.requests.length;
    const o = await h.sync({}, { TINES_MAX_RETRIES: '0' });
    expect(o).toMatchObject({ result: 'failed', errorKind: 'server' });
    // The fake logs a request when it answers, so let the calls in flight land first.
    await new Promise((r) => setTimeout(r, 300));
    const confirmations = h.fake.requests.slice(before).filter((r) => /\/admin\/users\/\d+$/.test(r.path));
    // At most the four calls already in flight when the first failed: not all fifteen.
    expect(confirmations.length).toBeGreaterThanOrEqual(1);
    expect(confirmations.length).toBeLessThanOrEqual(4);
    const present = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL');
    expect(present.n).toBe(100);
    h.fake.latencyMs = 0;
    h.fake.faults.length = 0;
    const retry = await h.sync();
    expect(retry.counts.usersRemoved).toBe(15);
  });
});
