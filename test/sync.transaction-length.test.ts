// A first sync under the default request ceiling (400 a minute: the listing
// takes seconds here, minutes on a real tenant) keeps no transaction open
// through the listing: on a shared server a long transaction holds back vacuum
// for everyone. Watched from pg_stat_activity.xact_start while the sync runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends().filter((b) => b === 'postgres'))('transaction length during a first sync (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(600, { seed: 21 }));
  });
  afterAll(() => h?.close());

  it('no transaction of the sync stays open for more than a second while 30 pages are listed', async () => {
    let longestMs = 0;
    let samples = 0;
    let done = false;
    const sync = h.sync({}, { TINES_REQUESTS_PER_MINUTE: '400' }).finally(() => {
      done = true;
    });
    while (!done) {
      const r = await h.one<{ ms: number | null }>(
        `SELECT max(extract(epoch FROM clock_timestamp() - xact_start) * 1000)::float8 AS ms
           FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`,
      );
      longestMs = Math.max(longestMs, r.ms ?? 0);
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const o = await sync;
    expect(o).toMatchObject({ result: 'succeeded', pagesFetched: 30 });
    expect(o.counts.usersAdded).toBe(600);
    // The listing really took a while (30 requests at 400 a minute), and was watched throughout.
    expect(o.durationMs).toBeGreaterThan(3_000);
    expect(samples).toBeGreaterThan(20);
    expect(longestMs).toBeLessThan(1_000);
  });
});
