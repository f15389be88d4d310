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

describe.each(backends())('confirmation progress (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(100, { seed: 32 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(() => h?.close());

  it('shows k of n and the time left in the log and in sync_runs while the confirmations run', async () => {
    const gone = [...h.fake.users.keys()].sort((a, b) => a - b).slice(30, 45); // 15%: under the guard
    for (const id of gone) h.fake.removeUser(id);
    h.fake.latencyMs = 120;
    const seen: { done: number | null; total: number | null }[] = [];
    let finished = false;
    const sync = h.sync().finally(() => {
      finished = true;
    });
    while (!finished) {
      const row = await h.one<{ done: number | null; total: number | null } | undefined>(
        `SELECT confirmations_done AS done, confirmations_total AS total FROM sync_runs WHERE status = 'running'`,
      );
      if (row && row.total !== null) seen.push(row);
      await new Promise((r) => setTimeout(r, 20));
    }
    h.fake.latencyMs = 0;
    const o = await sync;
    expect(o.counts).toMatchObject({ usersRemoved: 15, confirmCalls: 15 });
    // While running: the total from the start, and a count below it.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.total === 15)).toBe(true);
    expect(seen.some((r) => r.done! < 15)).toBe(true);
    expect(await h.one('SELECT confirmations_done, confirmations_total FROM sync_runs WHERE id = $1', [o.runId])).toEqual({
      confirmations_done: 15,
      confirmations_total: 15,
    });
    const lines = h.logs.parsed().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('confirming missing users:'));
    expect(lines.at(-1)).toMatchObject({ confirmed: 15, candidates: 15, msg: 'confirming missing users: 15 of 15' });
  });

  it('a run with nothing to confirm leaves the columns empty', async () => {
    const o = await h.sync();
    expect(await h.one('SELECT confirmations_done, confirmations_total FROM sync_runs WHERE id = $1', [o.runId])).toEqual({
      confirmations_done: null,
      confirmations_total: null,
    });
  });
});
