// 401 and 403: the connector goes to reconnect_required with a reason and an
// event, nothing is removed, and no sync calls Tines again until the key
// changes (a new TINES_API_KEY, a rewritten TINES_API_KEY_FILE) or `reconnect`
// succeeds. The `reconnect` command is the real CLI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { keyFingerprint } from '../src/db/connectors.js';
import type { Database } from '../src/db/database.js';
import { exitCodeFor, runSync, type SyncOutcome } from '../src/sync/run-sync.js';
import type { Config } from '../src/config.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, TEST_KEY, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd();

type ConnectorRow = { id: number; status: string; status_reason: string | null; api_key_fingerprint: string | null; consecutive_failures: number };
type StatusEvent = { id: number; sync_run_id: number | null; details: { status: { from: string; to: string }; reason: string | null } };

describe.each(backends())('auth (%s)', (backend) => {
  let h: Harness;
  // The harness' h.sync/h.one hold the database it opened; the embedded one is
  // closed around each CLI child, so this file queries through `db`, reopened after.
  let db: Database;
  const users = generateUsers(30, { seed: 5 });
  const ROTATED_KEY = 'tines-rotated-key-a7b3c9e1';
  const FILE_KEY_A = 'tines-file-key-one-31d4e5';
  const FILE_KEY_B = 'tines-file-key-two-8c2f90';
  const keyDir = mkdtempSync(join(tmpdir(), 'tines-connector-keyfile-'));
  const keyFile = join(keyDir, 'tines_api_key');

  const sync = (env: Record<string, string> = {}): Promise<SyncOutcome> => runSync({ config: h.config(env), db, log: h.logs.logger }, { trigger: 'manual' });
  const one = async <R>(sql: string, params?: unknown[]): Promise<R> => (await db.query<R>(sql, params)).rows[0]!;
  const rows = async <R>(sql: string, params?: unknown[]): Promise<R[]> => (await db.query<R>(sql, params)).rows;
  const connector = () => one<ConnectorRow>('SELECT * FROM connectors');
  const presentUsers = async () => (await one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users WHERE removed_at IS NULL')).n;
  const statusEvents = () => rows<StatusEvent>(`SELECT id, sync_run_id, details FROM change_events WHERE kind = 'connector_status_changed' ORDER BY id`);
  const removalEvents = async () =>
    (await one<{ n: number }>(`SELECT count(*)::int AS n FROM change_events WHERE kind IN ('user_removed', 'membership_removed')`)).n;

  /** The real CLI against this database; the embedded database admits one process, so it is closed meanwhile. */
  async function cli(args: string[], env: Record<string, string> = {}) {
    if (backend === 'embedded') await db.close();
    try {
      return await runCli(args, childEnv({ ...h.env, LOG_LEVEL: 'warn', ...env }), { cwd: CHILD_CWD });
    } finally {
      if (backend === 'embedded') db = await h.testDb.open();
    }
  }

  beforeAll(async () => {
    h = await createHarness(backend, users);
    db = h.db;
  });
  afterAll(async () => {
    if (db !== h?.db) await db?.close().catch(() => undefined);
    await h?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('a valid key syncs every user', async () => {
    const o = await sync();
    expect(o.result).toBe('succeeded');
    expect(await presentUsers()).toBe(30);
    expect((await connector()).status).toBe('active');
  });

  it('401: the run fails as auth (exit 3), the connector is reconnect_required with an event, nothing is removed', async () => {
    h.fake.validKeys.delete(TEST_KEY); // revoked in Tines
    const o = await sync();
    expect(o.result).toBe('failed');
    expect(o.errorKind).toBe('auth');
    expect(exitCodeFor(o)).toBe(3);
    expect(o.message).toMatch(/401/);

    const c = await connector();
    expect(c.status).toBe('reconnect_required');
    expect(c.status_reason).toMatch(/reconnect/i);
    const evs = await statusEvents();
    expect(evs).toHaveLength(1);
    expect(evs[0]!.details.status).toEqual({ from: 'active', to: 'reconnect_required' });
    expect(evs[0]!.details.reason).toMatch(/reconnect/i);

    const run = await one<{ status: string; error_kind: string }>('SELECT status, error_kind FROM sync_runs ORDER BY id DESC LIMIT 1');
    expect(run).toEqual({ status: 'failed', error_kind: 'auth' });
    expect(await presentUsers()).toBe(30);
    expect(await removalEvents()).toBe(0);
  });

  it('while reconnect_required with the same key, a sync calls nothing in Tines and answers reconnect_required (exit 3)', async () => {
    const requests = h.fake.requests.length;
    const runs = (await one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n;
    const o = await sync();
    expect(h.fake.requests.length).toBe(requests);
    expect(o.result).toBe('reconnect_required');
    expect(exitCodeFor(o)).toBe(3);
    expect(o.message).toMatch(/reconnect/i);
    expect((await connector()).status).toBe('reconnect_required');
    expect(await statusEvents()).toHaveLength(1);
    expect((await one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n).toBe(runs);
    expect(await presentUsers()).toBe(30);
  });

  it('a rotated key (new TINES_API_KEY) is tried: the sync succeeds and the connector is active again, with a second event', async () => {
    h.fake.validKeys.add(ROTATED_KEY);
    const requests = h.fake.requests.length;
    const o = await sync({ TINES_API_KEY: ROTATED_KEY });
    expect(o.result).toBe('succeeded');
    expect(exitCodeFor(o)).toBe(0);
    const sent = h.fake.requests.slice(requests);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.auth === `Bearer ${ROTATED_KEY}`)).toBe(true);

    const c = await connector();
    expect(c.status).toBe('active');
    expect(c.status_reason).toBeNull();
    expect(c.api_key_fingerprint).toBe(keyFingerprint(ROTATED_KEY));
    const evs = await statusEvents();
    expect(evs).toHaveLength(2);
    expect(evs[1]!.details.status).toEqual({ from: 'reconnect_required', to: 'active' });
    expect(await presentUsers()).toBe(30);
    expect(await removalEvents()).toBe(0);
  });

  it('TINES_API_KEY_FILE: a rewritten key file is picked up by the next sync of the same config', async () => {
    writeFileSync(keyFile, `${FILE_KEY_A}\n`);
    h.fake.validKeys.add(FILE_KEY_A);
    const config: Config = h.config({ TINES_API_KEY: '', TINES_API_KEY_FILE: keyFile });
    const syncWith = () => runSync({ config, db, log: h.logs.logger }, { trigger: 'manual' });

    let requests = h.fake.requests.length;
    expect((await syncWith()).result).toBe('succeeded');
    expect(h.fake.requests.slice(requests).every((r) => r.auth === `Bearer ${FILE_KEY_A}`)).toBe(true);

    // Key A is revoked: reconnect_required, and the unchanged file keeps Tines uncalled.
    h.fake.validKeys.delete(FILE_KEY_A);
    const refused = await syncWith();
    expect(refused.errorKind).toBe('auth');
    expect((await connector()).status).toBe('reconnect_required');
    requests = h.fake.requests.length;
    expect((await syncWith()).result).toBe('reconnect_required');
    expect(h.fake.requests.length).toBe(requests);

    // The secret is rotated in place: same config object, new file content.
    h.fake.validKeys.add(FILE_KEY_B);
    writeFileSync(keyFile, `${FILE_KEY_B}\n`);
    const o = await syncWith();
    expect(o.result).toBe('succeeded');
    const sent = h.fake.requests.slice(requests);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.auth === `Bearer ${FILE_KEY_B}`)).toBe(true);
    const c = await connector();
    expect(c.status).toBe('active');
    expect(c.api_key_fingerprint).toBe(keyFingerprint(FILE_KEY_B));
    expect(await presentUsers()).toBe(30);
  });

  it('403: reconnect_required with a reason about Tenant-owner rights, nothing removed', async () => {
    // The harness key comes back, but as a key without Tenant-owner rights.
    h.fake.forbiddenKeys.add(TEST_KEY);
    const eventsBefore = (await statusEvents()).length;
    const o = await sync();
    expect(o.result).toBe('failed');
    expect(o.errorKind).toBe('auth');
    expect(exitCodeFor(o)).toBe(3);
    expect(o.message).toMatch(/403/);
    expect(o.message).toMatch(/Tenant-owner/);
    const c = await connector();
    expect(c.status).toBe('reconnect_required');
    expect(c.status_reason).toMatch(/Tenant-owner/);
    const evs = await statusEvents();
    expect(evs).toHaveLength(eventsBefore + 1);
    expect(evs.at(-1)!.details.status).toEqual({ from: 'active', to: 'reconnect_required' });
    expect(await presentUsers()).toBe(30);
    expect(await removalEvents()).toBe(0);
  });

  it('`reconnect` exits 3 while Tines still refuses the key, then 0 once it accepts it, and the connector is active', async () => {
    let requests = h.fake.requests.length;
    const refused = await cli(['reconnect']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stdout + refused.stderr).toMatch(/Tenant-owner/);
    // It really asked Tines (one authenticated call), with the configured key.
    const asked = h.fake.requests.slice(requests);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked.every((r) => r.status === 403 && r.auth === `Bearer ${TEST_KEY}`)).toBe(true);
    expect((await connector()).status).toBe('reconnect_required');

    // The key's owner is made a Tenant owner in Tines.
    h.fake.forbiddenKeys.delete(TEST_KEY);
    h.fake.validKeys.add(TEST_KEY);
    requests = h.fake.requests.length;
    const ok = await cli(['reconnect']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(h.fake.requests.slice(requests).some((r) => r.status === 200)).toBe(true);
    const c = await connector();
    expect(c.status).toBe('active');
    expect(c.status_reason).toBeNull();
    const evs = await statusEvents();
    expect(evs.at(-1)!.details.status).toEqual({ from: 'reconnect_required', to: 'active' });

    // And the next sync calls Tines again.
    requests = h.fake.requests.length;
    expect((await sync()).result).toBe('succeeded');
    expect(h.fake.requests.length).toBeGreaterThan(requests);
    expect(await presentUsers()).toBe(30);
  });
});
