// After a sync that wrote many rows, the embedded database (PGlite runs no
// autovacuum) vacuums the sync's tables; a small sync does not, and on the
// server autovacuum's work is left to autovacuum.
import { afterAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

const vacuums = (h: Harness) =>
  h.one<{ n: number }>(`SELECT COALESCE(sum(vacuum_count), 0)::int AS n FROM pg_stat_user_tables WHERE relname IN ('tines_users', 'team_memberships')`);

describe.each(backends())('table upkeep after a sync (%s)', (backend) => {
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.close();
  });

  it(backend === 'embedded' ? 'a first sync of 1500 users vacuums the tables it wrote' : 'the server is left to autovacuum', async () => {
    const h = await createHarness(backend, generateUsers(1500, { seed: 3 }));
    harnesses.push(h);
    expect((await h.sync({}, { TINES_PAGE_SIZE: '500' })).result).toBe('succeeded');
    expect((await vacuums(h)).n).toBe(backend === 'embedded' ? 2 : 0);
  });

  it('a sync that wrote few rows does not vacuum', async () => {
    const h = await createHarness(backend, generateUsers(30, { seed: 4 }));
    harnesses.push(h);
    expect((await h.sync()).result).toBe('succeeded');
    expect((await vacuums(h)).n).toBe(0);
  });
});
