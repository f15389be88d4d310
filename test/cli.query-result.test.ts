// `query` through the built bin, on both backends: every column even when two
// share a name; values by column type (a date is the same date in any TZ, a
// timestamp without zone in ISO form, text that only looks like a timestamp
// untouched, bytea as \x hex); a table of more than 125,000 rows; display width
// for wide characters; no statement exits 2; a result larger than the heap
// streams as CSV instead of aborting the process; through a running daemon,
// the same columns and values, and a bounded result.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_MAX_ROWS } from '../src/daemon/local-gateway.js';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { CLI, childCwd, childEnv, runCli } from './helpers/cli.js';
import { daemonEnv, killAllDaemons, runCli as runDaemonCli, spawnDaemon } from './helpers/daemon.js';

const CHILD_CWD = childCwd();

describe.each(backends())('query results (%s)', (backend) => {
  let db: TestDb;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, childEnv({ LOG_LEVEL: 'warn', ...db.env, ...env }), { cwd: CHILD_CWD, timeoutMs: 120_000 });

  beforeAll(async () => {
    db = await createTestDb(backend);
  });
  afterAll(() => db?.dispose());

  it('two columns of one name: both in table and csv; --json refuses naming the column', async () => {
    const t = await cli(['query', 'SELECT 1 AS a, 2 AS a, 3 AS b']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout.split('\n').slice(0, 3)).toEqual(['a  a  b', '-  -  -', '1  2  3']);
    const c = await cli(['query', 'SELECT 1 AS a, 2 AS a', '--format', 'csv']);
    expect(c.stdout).toBe('a,a\n1,2\n');
    const j = await cli(['query', 'SELECT 1 AS a, 2 AS a', '--json']);
    expect(j.code).toBe(1);
    expect(j.stdout).toBe('');
    expect(j.stderr).toMatch(/^tines-connector query: the result has more than one column named "a".*--format csv/);
  });

  it('values by column type, the same east of UTC: date as written, timestamp in ISO form, timestamp-like text untouched, bytea as hex', async () => {
    const sql = `SELECT date '2026-12-01' AS d, timestamp '2026-01-01 10:00:00' AS ts, timestamptz '2026-01-01 10:00:00+05' AS tz, '2026-01-01 10:00:00+05'::text AS t, 'x'::bytea AS b`;
    const env = { TZ: 'Asia/Tokyo' };
    const j = await cli(['query', sql, '--json'], env);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual([
      { d: '2026-12-01', ts: '2026-01-01T10:00:00.000', tz: '2026-01-01T05:00:00.000Z', t: '2026-01-01 10:00:00+05', b: '\\x78' },
    ]);
    const c = await cli(['query', sql, '--format', 'csv'], env);
    expect(c.stdout).toBe('d,ts,tz,t,b\n2026-12-01,2026-01-01T10:00:00.000,2026-01-01T05:00:00.000Z,2026-01-01 10:00:00+05,\\x78\n');
    const t = await cli(['query', `SELECT date '2026-12-01' AS d, 'x'::bytea AS b`], env);
    expect(t.stdout.split('\n')[2]).toBe('2026-12-01  \\x78');
  });

  it('a table of 130,000 rows prints (widths are not a spread of every row into Math.max)', async () => {
    const r = await cli(['query', 'SELECT g FROM generate_series(1, 130000) g']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n').slice(-2)).toEqual(['130000', '(130000 rows)']);
  });

  it('wide characters and emoji are aligned by display width', async () => {
    const r = await cli(['query', `SELECT w, n FROM (VALUES ('日本', 1), ('ab', 2), ('👍', 3)) v(w, n)`]);
    expect(r.stdout.split('\n').slice(0, 5)).toEqual(['w     n', '----  -', '日本  1', 'ab    2', '👍    3']);
  });

  it('no statement (empty, blanks, only a comment) exits 2', async () => {
    for (const sql of ['', '  ', '-- nothing\n;']) {
      const r = await cli(['query', sql]);
      expect(r.code, JSON.stringify(sql)).toBe(2);
      expect(r.stderr).toMatch(/no statement given/);
    }
  });

  it('a CSV larger than the heap streams: 1,500,000 rows (160 MB) with a 64 MB heap, exit 0, no abort', async () => {
    const sql = `SELECT g, repeat('x', 100) AS filler FROM generate_series(1, 1500000) g`;
    const child = spawn(process.execPath, ['--max-old-space-size=64', CLI, 'query', sql, '--format', 'csv'], {
      cwd: CHILD_CWD,
      env: childEnv({ LOG_LEVEL: 'warn', ...db.env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let bytes = 0;
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code, stderr.slice(0, 500)).toBe(0);
    expect(lines).toBe(1_500_001);
    expect(bytes).toBeGreaterThan(150_000_000);
  }, 240_000);
});

describe('query through a running daemon (it holds the embedded database)', () => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(5, { seed: 2 }), apiKey: 'k' });
    testDb = await createTestDb('embedded');
    env = daemonEnv(fake, testDb, { TINES_API_KEY: 'k', SYNC_SCHEDULE: '0 0 1 1 *' });
    const daemon = await spawnDaemon(env, { label: 'daemon (query)' });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  it('every column, values by type, as on the database itself', async () => {
    const r = await runDaemonCli(['query', `SELECT 1 AS a, 2 AS a, date '2026-12-01' AS d, 'x'::bytea AS b`, '--format', 'csv'], { ...env, TZ: 'Asia/Tokyo' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('a,a,d,b\n1,2,2026-12-01,\\x78\n');
  });

  it('a result larger than the daemon hands over at once fails cleanly; the daemon stays up', async () => {
    const r = await runDaemonCli(['query', `SELECT g FROM generate_series(1, ${GATEWAY_MAX_ROWS + 1}) g`, '--format', 'csv'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^tines-connector query: the result has more than ${GATEWAY_MAX_ROWS} rows.*query the database directly`));
    const after = await runDaemonCli(['query', `SELECT count(*) AS n FROM generate_series(1, ${GATEWAY_MAX_ROWS}) g`, '--json'], env);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual([{ n: GATEWAY_MAX_ROWS }]);
  });
});
