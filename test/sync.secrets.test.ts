// The API key appears in no log line, error message or table, and not in what
// the CLI prints — after a success, a server failure that outlasts the retries,
// a network failure and a 401. It is really sent, as `Authorization: Bearer <key>`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import type { Database } from '../src/db/database.js';
import { runSync, type SyncOutcome } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd();

// Distinctive, so a hit cannot be a coincidence; the middle part catches a partly masked copy.
const SECRET_KEY = 'tsk-QX7v-Zr2m-Hp9w-Kd4s-5b8e1f3a';
const SECRET_PART = 'Zr2m-Hp9w-Kd4s';

function expectNoKey(where: string, text: string): void {
  expect(text.includes(SECRET_KEY), `${where} contains the API key`).toBe(false);
  expect(text.includes(SECRET_PART), `${where} contains part of the API key`).toBe(false);
}

describe.each(backends())('the API key stays secret (%s)', (backend) => {
  let h: Harness;
  let db: Database;
  const outputs: { what: string; text: string }[] = [];
  // One retry is enough for a failure to outlast the retries, and keeps the backoff short.
  const overrides = { TINES_API_KEY: SECRET_KEY, TINES_MAX_RETRIES: '1' };
  const env = (): Record<string, string> => childEnv({ ...h.env, ...overrides, LOG_LEVEL: 'debug' });
  const sync = (): Promise<SyncOutcome> => runSync({ config: h.config(overrides), db, log: h.logs.logger }, { trigger: 'manual' });

  /** The real CLI; the embedded database admits one process, so ours is closed meanwhile. */
  async function cli(args: string[]) {
    if (backend === 'embedded') await db.close();
    try {
      const r = await runCli(args, env(), { cwd: CHILD_CWD });
      outputs.push({ what: `\`${args.join(' ')}\` stdout`, text: r.stdout }, { what: `\`${args.join(' ')}\` stderr`, text: r.stderr });
      return r;
    } finally {
      if (backend === 'embedded') db = await h.testDb.open();
    }
  }

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(25, { seed: 3 }));
    db = h.db;
    h.fake.validKeys = new Set([SECRET_KEY]);
  });
  afterAll(async () => {
    if (db !== h?.db) await db?.close().catch(() => undefined);
    await h?.close();
  });

  it('a success, a 500 that outlasts the retries and a network failure each happen, with the key sent as Bearer', async () => {
    const ok = await sync();
    expect(ok.result).toBe('succeeded');

    h.fake.faults.push({ status: 500, times: 1000, body: JSON.stringify({ error: 'boom' }) });
    const server = await sync();
    h.fake.faults = [];
    expect(server).toMatchObject({ result: 'failed', errorKind: 'server' });

    h.fake.faults.push({ status: 0, times: 1000 });
    const network = await sync();
    h.fake.faults = [];
    expect(network).toMatchObject({ result: 'failed', errorKind: 'network' });
    for (const o of [server, network]) expectNoKey(`the ${o.errorKind} outcome's message`, JSON.stringify(o));

    const answered = h.fake.requests.filter((r) => r.status !== 0);
    expect(answered.length).toBeGreaterThanOrEqual(4); // 2 pages, then 2 attempts answered 500
    expect(answered.every((r) => r.auth === `Bearer ${SECRET_KEY}`)).toBe(true);
  });

  it('the CLI prints no key: `sync` succeeding, `sync` failing, `status --json`, `sync` refused', async () => {
    const ok = await cli(['sync']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/sync succeeded/);

    h.fake.faults.push({ status: 503, times: 1000 });
    const failing = await cli(['sync']);
    h.fake.faults = [];
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/503/); // the debug log really covered the failure

    // A 401 (in process, so its log lines are captured), then the CLI on the refused connector.
    h.fake.validKeys.delete(SECRET_KEY);
    const refusedInProcess = await sync();
    expect(refusedInProcess).toMatchObject({ result: 'failed', errorKind: 'auth' });
    expectNoKey(`the auth outcome's message`, JSON.stringify(refusedInProcess));
    const status = await cli(['status', '--json']);
    expect(status.code).toBe(0);
    const doc = JSON.parse(status.stdout) as { connectors: { status: string; status_reason: string }[] };
    expect(doc.connectors[0]!.status).toBe('reconnect_required');
    const refused = await cli(['sync']);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toMatch(/reconnect/);

    for (const o of outputs) expectNoKey(o.what, o.text);
  });

  it('no captured log line holds the key', () => {
    // The log did record the failures, so the check has something to look at.
    expect(h.logs.text).toMatch(/401/);
    expect(h.logs.text).toMatch(/500/);
    expect(h.logs.text).toMatch(/retrying/);
    h.logs.lines.forEach((line, i) => expectNoKey(`log line ${i}`, line));
  });

  it('no row of any table holds the key', async () => {
    const tables = (
      await db.query<{ name: string }>(
        `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
          WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
      )
    ).rows.map((r) => r.name);
    for (const t of ['connectors', 'tines_users', 'team_memberships', 'sync_runs', 'change_events']) expect(tables).toContain(`public.${t}`);
    let rowsSeen = 0;
    for (const t of tables) {
      const rows = (await db.query<{ row: string }>(`SELECT t::text AS row FROM ${t} t`)).rows;
      rowsSeen += rows.length;
      rows.forEach((r) => expectNoKey(`a row of ${t}`, r.row));
    }
    expect(rowsSeen).toBeGreaterThan(25);
    // The failures were recorded, with messages, in the rows just checked.
    const kinds = (await db.query<{ error_kind: string }>(`SELECT DISTINCT error_kind FROM sync_runs WHERE error_kind IS NOT NULL ORDER BY 1`)).rows;
    expect(kinds.map((k) => k.error_kind)).toEqual(['auth', 'network', 'server']);
  });
});
