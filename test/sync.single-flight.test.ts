// Single flight: two syncs of one connector at once never run together. One
// does the work, the other is 'busy' (exit 5) and does nothing: no run row,
// no call to Tines. Cross-process (two `sync` commands) on the PostgreSQL server.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint } from '../src/db/connectors.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { exitCodeFor, type SyncOutcome } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli, type CliResult } from './helpers/cli.js';
import { createHarness, TEST_KEY, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd();

type Run = { id: number; status: string; started_at: string; finished_at: string | null };

/** No two runs of one connector overlap in time, and none is left running. */
function expectNoOverlap(runs: Run[]): void {
  for (const r of runs) expect(r.finished_at, `run ${r.id} is still ${r.status}`).not.toBeNull();
  const spans = runs.map(
    (r) =>
      [
        Date.parse(r.started_at.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')),
        Date.parse(r.finished_at!.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')),
      ] as const,
  );
  for (const [s, f] of spans) {
    expect(Number.isNaN(s) || Number.isNaN(f)).toBe(false);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
}

describe.each(backends())('single flight (%s)', (backend) => {
  let h: Harness;
  const users = generateUsers(50, { seed: 21 }); // 3 pages of 20
  beforeAll(async () => {
    h = await createHarness(backend, users);
  });
  afterAll(() => h?.close());

  // Two syncs at once on a database where the connector has no row yet: both
  // register it at the same moment. Neither may crash; one works, one is busy.
  // The registration race behind it is pinned deterministically by the last test of this file.
  it('two first-ever syncs at once: one succeeds, one is busy, neither throws', async () => {
    h.fake.latencyMs = 50;
    const settled = await Promise.allSettled([h.sync(), h.sync()]);
    h.fake.latencyMs = 0;
    const errors = settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
    expect(errors).toEqual([]);
    const outcomes = settled.map((s) => (s as PromiseFulfilledResult<SyncOutcome>).value);
    expect(outcomes.map((o) => o.result).sort()).toEqual(['busy', 'succeeded']);
    const c = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM connectors');
    expect(c.n).toBe(1);
  });

  it('two syncs at once on a registered connector: exactly one succeeds, the other is busy (exit 5) and does nothing', async () => {
    // Make sure the connector exists and is in sync (the previous test may have failed).
    expect((await h.sync()).result).toBe('succeeded');
    const runsBefore = (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n;
    const lastEvent = (await h.one<{ n: number }>('SELECT coalesce(max(id), 0)::int AS n FROM change_events')).n;
    h.fake.updateUser(users[0]!.id, { first_name: 'Concurrent' }); // one real change to apply, once
    h.fake.latencyMs = 50; // 3 pages: the first sync holds the lock for well over 150 ms
    const requestsBefore = h.fake.requests.length;
    let outcomes: SyncOutcome[];
    try {
      outcomes = await Promise.all([h.sync(), h.sync()]);
    } finally {
      h.fake.latencyMs = 0;
    }
    const busy = outcomes.filter((o) => o.result === 'busy');
    const done = outcomes.filter((o) => o.result === 'succeeded');
    expect(busy).toHaveLength(1);
    expect(done).toHaveLength(1);
    expect(exitCodeFor(busy[0]!)).toBe(5);
    expect(exitCodeFor(done[0]!)).toBe(0);
    expect(busy[0]!.runId).toBeNull();
    expect(busy[0]!.message).toMatch(/another sync/i);
    expect(done[0]!.counts.usersUpdated).toBe(1);

    // Only the one sync talked to Tines: one listing of 3 pages.
    const listing = h.fake.requests.slice(requestsBefore).filter((r) => r.path === '/api/v1/admin/users');
    expect(listing.map((r) => r.query.page).sort()).toEqual(['1', '2', '3']);
    // One run row more, one user_updated event, nothing applied twice.
    expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n).toBe(runsBefore + 1);
    const evs = await h.rows<{ kind: string }>('SELECT kind FROM change_events WHERE id > $1 ORDER BY id', [lastEvent]);
    expect(evs.map((e) => e.kind)).toEqual(['user_updated']);
  });

  it('sync_runs shows no overlapping runs and none left running', async () => {
    const runs = await h.rows<Run>('SELECT id, status, started_at::text, finished_at::text FROM sync_runs ORDER BY id');
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expectNoOverlap(runs);
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
  });

  if (backend === 'postgres')
    it('two `sync` processes at once: exit codes 0 and 5, and one run row', async () => {
      expect((await h.sync()).result).toBe('succeeded');
      const runsBefore = (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n;
      h.fake.updateUser(users[1]!.id, { last_name: 'CrossProcess' });
      // Hold the listing after page 1 until one child has exited (at most 10 s), so the
      // two processes overlap however slowly they start; latency keeps every page slow too.
      let firstExit!: () => void;
      const oneExited = new Promise<void>((r) => (firstExit = r));
      h.fake.latencyMs = 100;
      h.fake.onPage = async (page) => {
        if (page === 1) await Promise.race([oneExited, new Promise((r) => setTimeout(r, 10_000))]);
      };
      const env = childEnv({ ...h.env, LOG_LEVEL: 'warn' });
      let results: CliResult[];
      try {
        results = await Promise.all(
          [0, 1].map(() =>
            runCli(['sync'], env, { cwd: CHILD_CWD }).then((r) => {
              firstExit();
              return r;
            }),
          ),
        );
      } finally {
        h.fake.latencyMs = 0;
        h.fake.onPage = undefined;
      }
      const codes = results.map((r) => r.code).sort();
      expect(codes, results.map((r) => r.stdout + r.stderr).join('\n---\n')).toEqual([0, 5]);
      const busy = results.find((r) => r.code === 5)!;
      expect(busy.stdout).toMatch(/another sync/i);
      const ok = results.find((r) => r.code === 0)!;
      expect(ok.stdout).toMatch(/sync succeeded/);
      expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n).toBe(runsBefore + 1);
      const upd = await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM change_events WHERE kind = 'user_updated' AND tines_user_id = $1`, [users[1]!.id]);
      expect(upd.n).toBe(1);
      const runs = await h.rows<Run>('SELECT id, status, started_at::text, finished_at::text FROM sync_runs ORDER BY id');
      expectNoOverlap(runs);
    });

  // The same race as the first test, made deterministic: another process's
  // registration of the connector commits while this sync's registration
  // waits on it. The sync must go on (or be busy), never throw.
  // (registerConnector re-reads the row with a fresh snapshot when its upsert returns none.)
  if (backend === 'postgres')
    it('a registration committed by another process meanwhile does not crash the sync', async () => {
      const name = 'race-test';
      const config = h.config({ CONNECTOR_NAME: name });
      const other = new pg.Client({ connectionString: h.env.DATABASE_URL });
      await other.connect();
      try {
        await other.query('BEGIN');
        // Exactly what registerConnector writes for this configuration, so the upsert has nothing to update.
        await other.query(
          'INSERT INTO connectors (name, tenant_domain, api_key_fingerprint, inactive_after_days, org_email_domains) VALUES ($1, $2, $3, $4, NULL)',
          [name, config.tines.tenantDomain, keyFingerprint(TEST_KEY), config.inactiveAfterDays],
        );
        const pending = h.sync({}, { CONNECTOR_NAME: name }).then(
          (o) => ({ ok: true as const, o }),
          (err: unknown) => ({ ok: false as const, err: String(err) }),
        );
        // Wait until the sync's INSERT … ON CONFLICT is blocked on the uncommitted row, then commit it.
        const deadline = Date.now() + 10_000;
        for (;;) {
          const w = await other.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
          );
          if (w.rows[0]!.n > 0 || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await other.query('COMMIT');
        const r = await pending;
        expect(r.ok ? r.o.result : r.err).toBe('succeeded');
        const c = await h.one<{ n: number }>('SELECT count(*)::int AS n FROM connectors WHERE name = $1', [name]);
        expect(c.n).toBe(1);
      } finally {
        await other.query('ROLLBACK').catch(() => undefined);
        await other.end();
      }
    });
});
