// Removals only follow a complete and consistent listing; users a shifting
// listing skipped are confirmed with GET /admin/users/{id}; a failed listing
// commits nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { exitCodeFor } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('listing consistency (%s)', (backend) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(backend, generateUsers(45, { seed: 5 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterEach(() => h?.close());

  const present = async () => (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL')).n;

  it('a user deleted while the listing is between pages holds the run: nothing removed, changes still applied', async () => {
    const ids = [...h.fake.users.keys()].sort((a, b) => a - b);
    h.fake.updateUser(ids[40]!, { first_name: 'Changed' });
    h.fake.removeUser(ids[44]!); // gone before the listing: a real removal candidate
    h.fake.onPage = (page) => {
      if (page === 1) h.fake.removeUser(ids[2]!);
    };
    const o = await h.sync();
    expect(o.result).toBe('held');
    expect(o.errorKind).toBe('inconsistent_listing');
    expect(exitCodeFor(o)).toBe(4);
    expect(o.counts.usersUpdated).toBe(1);
    expect(o.counts.usersRemoved).toBe(0);
    expect(await present()).toBe(45);
    const run = await h.one<Record<string, unknown>>('SELECT status, error_kind, error_message FROM sync_runs ORDER BY id DESC LIMIT 1');
    expect(run).toMatchObject({ status: 'held', error_kind: 'inconsistent_listing' });
    expect(String(run.error_message)).toMatch(/count moved|distinct/);
  });

  it('a user skipped because others were deleted and added between pages is confirmed present, not removed', async () => {
    const ids = [...h.fake.users.keys()].sort((a, b) => a - b);
    const [newcomer] = generateUsers(1, { startId: 100_000, seed: 77 });
    h.fake.onPage = (page) => {
      if (page === 1) {
        h.fake.removeUser(ids[4]!); // already listed on page 1
        h.fake.addUser(newcomer!); // count unchanged
      }
    };
    const before = h.fake.requests.length;
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
    // ids[20] slid onto page 1 after it was served: the listing never showed it.
    const confirmations = h.fake.requests.slice(before).filter((r) => /\/admin\/users\/\d+$/.test(r.path));
    expect(confirmations.map((r) => [r.path, r.status])).toEqual([[`/api/v1/admin/users/${ids[20]}`, 200]]);
    expect(o.counts).toMatchObject({ usersAdded: 1, usersRemoved: 0, removalCandidates: 1, confirmCalls: 1 });
    const skipped = await h.one<{ removed_at: string | null; raw: Record<string, unknown> }>(
      'SELECT removed_at, raw FROM tines_users WHERE tines_user_id = $1',
      [ids[20]],
    );
    expect(skipped.removed_at).toBeNull();
    // The confirmation asks for the memberships too, so the kept user's raw still holds them.
    expect(confirmations[0]!.query).toMatchObject({ include: 'team_memberships' });
    expect(skipped.raw.team_memberships).toEqual(h.fake.users.get(ids[20]!)!.team_memberships);
    // The next listing is stable again and finds the deletion.
    h.fake.onPage = undefined;
    const next = await h.sync();
    expect(next.counts.usersRemoved).toBe(1);
  });

  it('a malformed page fails the run with invalid_response and commits nothing', async () => {
    h.fake.removeUser([...h.fake.users.keys()][0]!);
    h.fake.faults.push({ match: (r) => r.page === 2, status: 200, body: '{"admin/users": [{"id": "not-a-number"}], "meta": {}}' });
    const o = await h.sync();
    expect(o.result).toBe('failed');
    expect(o.errorKind).toBe('invalid_response');
    expect(exitCodeFor(o)).toBe(1);
    expect(await present()).toBe(45);
    const run = await h.one<Record<string, unknown>>('SELECT status, error_kind FROM sync_runs ORDER BY id DESC LIMIT 1');
    expect(run).toEqual({ status: 'failed', error_kind: 'invalid_response' });
  });

  it('a 500 that outlasts the retries fails the run; three in a row make the connector failing; a success resets it', async () => {
    h.fake.removeUser([...h.fake.users.keys()][0]!);
    for (let i = 1; i <= 3; i++) {
      h.fake.faults.push({ match: (r) => r.page === 2, status: 500, times: 3 });
      const o = await h.sync();
      expect(o).toMatchObject({ result: 'failed', errorKind: 'server' });
      expect(o.message).toMatch(/after 3 attempts/);
    }
    expect(await present()).toBe(45);
    const c = await h.one<Record<string, unknown>>('SELECT status, consecutive_failures, status_reason FROM connectors');
    expect(c).toMatchObject({ status: 'failing', consecutive_failures: 3 });
    const ok = await h.sync();
    expect(ok.result).toBe('succeeded');
    expect(await h.one('SELECT status, consecutive_failures FROM connectors')).toEqual({ status: 'active', consecutive_failures: 0 });
    const changes = await h.rows<{ details: { status: { to: string } } }>(
      `SELECT details FROM change_events WHERE kind = 'connector_status_changed' ORDER BY id`,
    );
    expect(changes.map((e) => e.details.status.to)).toEqual(['failing', 'active']);
  });

  it('retried 429s and 503s within the budget do not fail the run', async () => {
    h.fake.faults.push({ match: (r) => r.page === 1, status: 429, headers: { 'Retry-After': '0' } });
    h.fake.faults.push({ match: (r) => r.page === 2, status: 503 });
    const o = await h.sync();
    expect(o.result).toBe('succeeded');
  });
});
