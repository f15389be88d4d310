// The real `tines-connector` bin, spawned with an environment built from
// scratch: usage, configuration errors before any database work, and each
// command's exit code and output.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, inDb, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd();

const USERS = 40;

describe.each(backends())('cli commands (%s)', (backend) => {
  let h: Harness;
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, childEnv({ ...h.env, LOG_LEVEL: 'warn', ...extra }), { cwd: CHILD_CWD });

  const count = (table: string) => inDb(h, async (db) => Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n));
  /** Row counts of several tables, read in one opening of the database. */
  const counts = (tables: string[]) =>
    inDb(h, async (db) => {
      const out: Record<string, number> = {};
      for (const t of tables) out[t] = Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).rows[0]!.n);
      return out;
    });

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(USERS, { seed: 17 }));
    if (backend === 'embedded') await h.db.close(); // the children open the data directory
  });
  afterAll(() => h?.close());

  it('no command: exit 2 with the usage', async () => {
    const r = await runCli([], childEnv(), { cwd: CHILD_CWD });
    expect(r.code).toBe(2);
    const text = r.stdout + r.stderr;
    expect(text).toMatch(/usage: tines-connector <command>/);
    for (const cmd of ['sync', 'migrate', 'status', 'reconnect', 'delete', 'query']) expect(text).toContain(cmd);
  });

  it('an unknown command: exit 2 with the usage', async () => {
    const r = await runCli(['frobnicate'], childEnv(), { cwd: CHILD_CWD });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/frobnicate/);
    expect(r.stdout + r.stderr).toMatch(/usage: tines-connector/);
  });

  it('bad configuration: exit 2 naming every bad variable, before touching the database', async () => {
    const { TINES_API_KEY: _key, ...withoutKey } = h.env;
    const parent = mkdtempSync(join(tmpdir(), 'tines-connector-untouched-'));
    const fresh = join(parent, 'data');
    const env = childEnv({ ...withoutKey, TINES_PAGE_SIZE: '0', LOG_LEVEL: 'warn', ...(backend === 'embedded' ? { DATA_DIR: fresh } : {}) });
    const r = await runCli(['sync'], env, { cwd: CHILD_CWD });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TINES_PAGE_SIZE/);
    expect(r.stderr).toMatch(/TINES_API_KEY/);
    expect(r.stdout).toBe('');
    expect(h.fake.requests).toHaveLength(0);
    const created = existsSync(fresh);
    rmSync(parent, { recursive: true, force: true });
    if (backend === 'embedded') expect(created, 'the embedded data directory was created').toBe(false);
    expect(await counts(['connectors', 'sync_runs'])).toEqual({ connectors: 0, sync_runs: 0 });
  });

  if (backend === 'postgres')
    it('bad configuration: not even a connection is opened to the database server', async () => {
      // A listener standing in for the server: any connection attempt would show here.
      const connections: number[] = [];
      const server = createServer((sock) => {
        connections.push(Date.now());
        sock.destroy();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        const port = (server.address() as AddressInfo).port;
        const { TINES_API_KEY: _key, ...withoutKey } = h.env;
        const r = await runCli(['sync'], childEnv({ ...withoutKey, DATABASE_URL: `postgres://u@127.0.0.1:${port}/db`, TINES_PAGE_SIZE: '0' }), {
          cwd: CHILD_CWD,
        });
        expect(r.code).toBe(2);
        expect(connections).toEqual([]);
      } finally {
        await new Promise((r) => server.close(r));
      }
    });

  it('`migrate`: exit 0, and the schema is there', async () => {
    const r = await cli(['migrate']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/up to date|applied/);
    expect(await inDb(h, async (db) => (await db.query(`SELECT to_regclass('public.tines_users')::text AS t`)).rows[0])).toEqual({ t: 'tines_users' });
  });

  it('`sync`: exit 0 and a summary of what it did', async () => {
    const r = await cli(['sync']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sync succeeded/);
    expect(r.stdout).toMatch(new RegExp(`users seen ${USERS}\\b`));
    expect(r.stdout).toMatch(new RegExp(`\\+${USERS} added`));
    expect(await count('tines_users')).toBe(USERS);
  });

  it('`status --json`: exit 0, stdout is exactly one JSON document with the connector', async () => {
    const r = await cli(['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const doc = JSON.parse(r.stdout) as { connectors: Record<string, unknown>[] };
    expect(doc.connectors).toHaveLength(1);
    expect(doc.connectors[0]).toMatchObject({
      name: 'tines',
      status: 'active',
      status_reason: null,
      consecutive_failures: 0,
      users_present: USERS,
      users_removed: 0,
      last_run: expect.objectContaining({ status: 'succeeded', trigger: 'manual', users_seen: USERS }),
    });
    expect(doc.connectors[0]!.last_success_at).not.toBeNull();
    expect(String(doc.connectors[0]!.api_key_fingerprint)).toMatch(/^sha256:[0-9a-f]{16}$/);
  });

  it('`status`: exit 0, readable text with the state, last run and user counts', async () => {
    const r = await cli(['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimStart().startsWith('{')).toBe(false);
    expect(r.stdout).toMatch(/^tines \(/m);
    expect(r.stdout).toMatch(/state\s+active/);
    expect(r.stdout).toMatch(/last run\s+succeeded/);
    // Which process ran it (in a fleet: which replica), by host name and pid.
    expect(r.stdout).toMatch(new RegExp(`last run .* on ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid \\d+\\)`));
    expect(r.stdout).toMatch(new RegExp(`${USERS} present`));
  });

  it('`status` only reads: another name, tenant or key shows what it would use and changes no row', async () => {
    const snapshot = () =>
      inDb(h, async (db) => (await db.query('SELECT name, tenant_domain, api_key_fingerprint, updated_at::text AS at FROM connectors ORDER BY id')).rows);
    const before = await snapshot();
    expect(before).toHaveLength(1);
    const other = { TINES_TENANT_DOMAIN: 'https://other-tenant.tines.com', TINES_API_KEY: 'another-key' };
    const ghost = await cli(['status', '--json'], { ...other, CONNECTOR_NAME: 'ghost' });
    expect(ghost.code, ghost.stderr).toBe(0);
    const doc = JSON.parse(ghost.stdout) as { connectors: { name: string }[]; configured: Record<string, unknown> };
    expect(doc.connectors.map((c) => c.name)).toEqual(['tines']);
    expect(doc.configured).toMatchObject({ name: 'ghost', registered: false, tenant_domain: 'other-tenant.tines.com' });
    expect(String(doc.configured.api_key_fingerprint)).toMatch(/^sha256:[0-9a-f]{16}$/);
    const text = await cli(['status'], other);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/configured now: other-tenant\.tines\.com/);
    expect(text.stdout).toMatch(/the configured key is sha256:[0-9a-f]{16}; the next sync uses it/);
    expect(await snapshot()).toEqual(before);
  });

  it('`status`, `report`, `query` and `delete` on a DATA_DIR without a database say so and create none', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'tines-connector-no-db-'));
    try {
      for (const args of [['status'], ['report'], ['query', 'SELECT 1']]) {
        const r = await cli(args, { DATABASE_URL: '', DATA_DIR: join(parent, 'typo') });
        expect(r.code, args[0]).toBe(1);
        expect(r.stderr).toMatch(/no embedded database in .*typo/);
      }
      const d = await cli(['delete', '--yes'], { DATABASE_URL: '', DATA_DIR: join(parent, 'typo') });
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/no embedded database in .*typo.*nothing deleted/);
      expect(existsSync(join(parent, 'typo'))).toBe(false);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  if (backend === 'postgres')
    it('`status` and `report` on a database without the schema say so (exit 1); `query` and `delete` still run; none installs the schema', async () => {
      const admin = new pg.Client({ connectionString: inject('pgAdminUrl')! });
      await admin.connect();
      const name = `tc_test_empty_${randomBytes(4).toString('hex')}`;
      await admin.query(`CREATE DATABASE ${name}`);
      try {
        const url = new URL(inject('pgAdminUrl')!);
        url.pathname = `/${name}`;
        const env = { DATABASE_URL: url.toString() };
        for (const args of [['status'], ['report']]) {
          const r = await cli(args, env);
          expect(r.code, args[0]).toBe(1);
          expect(r.stderr).toMatch(/no tines-connector schema in .*is DATABASE_URL right/);
        }
        const q = await cli(['query', 'SELECT 1 AS one', '--json'], env);
        expect(q.code, q.stderr).toBe(0);
        expect(JSON.parse(q.stdout)).toEqual([{ one: 1 }]);
        const d = await cli(['delete', '--yes'], env);
        expect(d.code, d.stderr).toBe(0);
        expect(d.stdout).toMatch(/No tines-connector schema .*nothing deleted/);
        const probe = new pg.Client({ connectionString: url.toString() });
        await probe.connect();
        const t = await probe.query(`SELECT to_regclass('schema_migrations')::text AS a, to_regclass('connectors')::text AS b`);
        await probe.end();
        expect(t.rows[0]).toEqual({ a: null, b: null });
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      }
    });

  it('`query … --json`: exit 0 and the rows as JSON', async () => {
    const r = await cli(['query', 'SELECT count(*) AS n FROM tines_users', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { n: unknown }[];
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.n)).toBe(USERS);
  });

  it('`query` refuses to write: DELETE exits 1 and deletes nothing', async () => {
    const r = await cli(['query', 'DELETE FROM tines_users']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read-only|read only/i);
    expect(await count('tines_users')).toBe(USERS);
  });

  it('`query` runs one statement: "SELECT 1; DELETE …" and "COMMIT; DELETE …" exit 1 and delete nothing', async () => {
    const a = await cli(['query', 'SELECT 1; DELETE FROM tines_users']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/^tines-connector query: /); // the prefix every command uses
    // Ending the read-only transaction first must not open a way to write either.
    const b = await cli(['query', 'COMMIT; DELETE FROM tines_users']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^tines-connector query: /);
    expect(await count('tines_users')).toBe(USERS);
  });

  it('`query` runs only queries: COPY, a DO block running COPY, CALL are refused (even read-only they could write a file or run a program), behind comments too', async () => {
    const target = join(CHILD_CWD, 'copied.txt');
    for (const sql of [
      `COPY (SELECT 1) TO '${target}'`,
      `/* a /* nested */ comment */ -- and a line\n  copy (select 1) to '${target}'`,
      `DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO ''${target}'''; END $$`,
      'CALL nothing()',
      // PostgreSQL ends a line comment at a carriage return: what follows it is the statement.
      ` -- x\rCOPY (SELECT 1) TO '${target}' /*\nSELECT */`,
      `-- x\rCOPY (SELECT 1) TO '${target}' /*\nSELECT */`,
    ]) {
      const r = await cli(['query', sql]);
      expect(r.code, sql).toBe(1);
      expect(r.stderr, sql).toMatch(/only read-only queries run here \(SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN\), not (COPY|DO|CALL)/);
    }
    expect(existsSync(target)).toBe(false);
    for (const sql of [
      '/* count */ SELECT count(*) AS n FROM tines_users',
      '-- a leading comment\nSELECT 1',
      '(SELECT 1)',
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'VALUES (1)',
      'TABLE connectors',
      'SHOW timezone',
      'EXPLAIN SELECT 1',
    ]) {
      const r = await cli(['query', sql]);
      expect(r.code, `${sql}: ${r.stderr}`).toBe(0);
    }
  });

  it('`delete` without --yes: exit 2 and nothing deleted', async () => {
    const r = await cli(['delete']);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/--yes/);
    expect(await counts(['connectors', 'tines_users'])).toEqual({ connectors: 1, tines_users: USERS });
  });

  it('`delete --yes`: exit 0, a reminder to revoke the key in Tines, and every row of the connector gone', async () => {
    const r = await cli(['delete', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/revoke/i);
    expect(r.stdout).toMatch(/Tines/);
    expect(await counts(['connectors', 'tines_users', 'team_memberships', 'sync_runs', 'change_events'])).toEqual({
      connectors: 0,
      tines_users: 0,
      team_memberships: 0,
      sync_runs: 0,
      change_events: 0,
    });
    // Looking afterwards does not bring the connector back.
    const status = await cli(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/connector "tines" .* is not registered here yet/);
    expect(await count('connectors')).toBe(0);
  });
});
