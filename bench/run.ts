// npm run bench -- --users N: the sync pipeline against its floors, one run.
// Progress on stderr; the last stdout line is one JSON object of figures.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { copyValue, escapeCopy } from '../src/db/database.js';
import { SQL_TYPE, USER_FIELDS } from '../src/tines/user-fields.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The shipped bin (the bundle), as operators run it.
const cli = join(root, 'dist', 'bin', 'cli.js');
const probe = join(root, 'dist', 'bench', 'rss-probe.js');
const KEY = 'bench-key';
const PAGE = 500;

const { values } = parseArgs({ options: { users: { type: 'string' }, 'keep-db': { type: 'boolean' } } });
const users = Number(values.users ?? 100_000);
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function adminUrl(): string {
  return process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

/** The fake Tines in its own process, driven by stdin line commands. */
async function startFake() {
  const child = spawn(
    process.execPath,
    [join(root, 'dist', 'src', 'fake', 'main.js'), '--users', String(users), '--key', KEY, '--rpm-free', '--cache-mb', '4096'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: child.stdout! });
  const it = lines[Symbol.asyncIterator]();
  const next = async () => JSON.parse(String((await it.next()).value)) as Record<string, unknown>;
  const hello = await next();
  return {
    url: String(hello.url),
    async send(cmd: string) {
      child.stdin!.write(`${cmd}\n`);
      return next();
    },
    stop() {
      child.stdin!.end('quit\n');
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { Authorization: `Bearer ${KEY}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/** Every page, sequentially, parsed; `each` sees the parsed page. Returns the page count. */
async function walk(base: string, each?: (users: Record<string, unknown>[]) => void | Promise<void>): Promise<number> {
  let page = 1;
  let pages = 0;
  for (;;) {
    const body = JSON.parse(await getText(`${base}/api/v1/admin/users?per_page=${PAGE}&page=${page}&include=team_memberships`)) as {
      'admin/users': Record<string, unknown>[];
      meta: { next_page_number: number | null };
    };
    pages++;
    await each?.(body['admin/users']);
    if (!body.meta.next_page_number) return pages;
    page = body.meta.next_page_number;
  }
}

const USER_COLUMNS = ['tines_user_id', ...USER_FIELDS.map((f) => f.column), 'raw'].join(', ');
const COPY_FLOOR_DDL = `tines_user_id bigint, ${USER_FIELDS.map((f) => `${f.column} ${SQL_TYPE[f.kind]}`).join(', ')}, raw jsonb`;
function copyLine(u: Record<string, unknown>): string {
  const v = [u.id, ...USER_FIELDS.map((f) => u[f.wire])];
  return `${v.map(copyValue).join('\t')}\t${escapeCopy(JSON.stringify(u))}\n`;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, Math.round(performance.now() - t)];
}

/**
 * One CLI command (`sync` unless told) in a child process: wall time, exit code,
 * peak RSS, and the time its removal confirmation calls took (from the sync's
 * summary log line, read at info level; other lines pass through to stderr).
 */
async function runCli(env: Record<string, string>, label: string, command = 'sync') {
  const rssFile = join(tmpdir(), `bench-rss-${randomBytes(4).toString('hex')}`);
  const started = performance.now();
  let confirmMs = 0;
  let phases = '';
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', probe, cli, command], {
      env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'info', LOG_FORMAT: 'json', BENCH_RSS_FILE: rssFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      let entry: { level?: number; msg?: string; confirmMs?: number; listMs?: number; stageMs?: number; applyMs?: number } | undefined;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        // not a log line
      }
      if (typeof entry?.confirmMs === 'number') {
        confirmMs = entry.confirmMs;
        phases = ` (listing ${entry.listMs} ms, staging's end ${entry.stageMs} ms, transaction ${entry.applyMs} ms)`;
      }
      if (!entry || (entry.level ?? 0) >= 40) process.stderr.write(`${line}\n`);
    });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const ms = Math.round(performance.now() - started);
  const rssMb = Math.round(Number(readFileSync(rssFile, 'utf8')) / 1024);
  rmSync(rssFile, { force: true });
  log(`${label}: exit ${code}, ${ms} ms, peak RSS ${rssMb} MB${confirmMs ? `, confirmation calls ${confirmMs} ms` : ''}${phases}`);
  if (code !== 0) throw new Error(`${label} exited ${code}`);
  return { ms, rssMb, confirmMs };
}

/**
 * What the server alone needs to write the rows a first sync wrote: those rows,
 * already encoded, loaded with COPY into copies of their tables (same columns,
 * defaults, constraints and indexes) in one transaction, then rolled back. No
 * fetching, parsing or encoding: the bound for initial_ms on the database side.
 * Printed on stderr only; the figures' JSON keeps the issue's keys.
 */
const FLOOR_TABLES = [
  ['tines_users', '*'],
  ['team_memberships', '*'],
  ['change_events', 'connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, team_id, details'],
] as const;

/** The first sync's rows, saved right after it (reading writes no WAL). */
async function saveFloorRows(db: pg.Client, tmp: string): Promise<void> {
  for (const [table, cols] of FLOOR_TABLES) {
    const select = `SELECT ${cols} FROM ${table} ORDER BY ${table === 'change_events' ? 'id' : 'connector_id, tines_user_id'}`;
    await pipeline(db.query(copyTo(`COPY (${select}) TO STDOUT`)), createWriteStream(join(tmp, `${table}.copy`)));
  }
}

/**
 * Loads the saved rows; run last, so its WAL cannot push a checkpoint into the
 * resyncs. With `keysOnly`, the copies keep their primary keys and no other
 * index: what storing those rows costs with no index an operator queries by.
 */
async function writeFloor(db: pg.Client, tmp: string, keysOnly = false): Promise<number> {
  try {
    for (const [table] of FLOOR_TABLES) {
      await db.query(`CREATE TABLE floor_${table} (LIKE ${table} INCLUDING ALL)`);
      if (!keysOnly) continue;
      const { rows } = await db.query<{ name: string }>(
        'SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass AND NOT indisprimary',
        [`floor_${table}`],
      );
      for (const { name } of rows) await db.query(`DROP INDEX ${name}`);
    }
    await db.query('BEGIN');
    try {
      const [, ms] = await timed(async () => {
        for (const [table, cols] of FLOOR_TABLES) {
          const into = cols === '*' ? `floor_${table}` : `floor_${table} (${cols})`;
          await pipeline(createReadStream(join(tmp, `${table}.copy`)), db.query(copyFrom(`COPY ${into} FROM STDIN`)));
        }
      });
      return ms;
    } finally {
      await db.query('ROLLBACK');
    }
  } finally {
    for (const [table] of FLOOR_TABLES) {
      await db.query(`DROP TABLE IF EXISTS floor_${table}`).catch(() => undefined);
    }
  }
}

async function main() {
  log(`${users} users, page size ${PAGE}`);
  const fake = await startFake();
  const dbName = `tc_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl());
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const tmp = mkdtempSync(join(tmpdir(), 'tines-bench-'));
  try {
    log('warming the fake (pre-rendering every page)');
    const pages = await walk(fake.url);
    const [, fetchMs] = await timed(() => walk(fake.url));
    log(`fetch floor: ${fetchMs} ms for ${pages} pages`);

    const copyFile = join(tmp, 'users.copy');
    const out = createWriteStream(copyFile);
    await walk(fake.url, async (list) => {
      if (!out.write(list.map(copyLine).join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
    });
    await new Promise<void>((r) => out.end(() => r()));
    await db.query(`CREATE UNLOGGED TABLE copy_floor (${COPY_FLOOR_DDL})`);
    const [, copyMs] = await timed(() => pipeline(createReadStream(copyFile), db.query(copyFrom(`COPY copy_floor (${USER_COLUMNS}) FROM STDIN`))));
    await db.query('DROP TABLE copy_floor');
    rmSync(copyFile);
    log(`copy floor: ${copyMs} ms`);

    const env = {
      TINES_TENANT_DOMAIN: fake.url,
      TINES_API_KEY: KEY,
      DATABASE_URL: dbUrl,
      TINES_PAGE_SIZE: String(PAGE),
      TINES_REQUESTS_PER_MINUTE: '100000000',
    };
    // initial_ms is the first sync into the empty schema: the schema is made first, untimed.
    await runCli(env, 'migrate', 'migrate');
    const initial = await runCli(env, 'initial');
    await saveFloorRows(db, tmp);

    const counts = async () => (await db.query<{ n: string }>('SELECT (SELECT count(*) FROM change_events) AS n')).rows[0]!.n;
    const { rows } = await db.query<{ x: string }>('SELECT (txid_current() % 4294967296)::text AS x');
    const before = Number(rows[0]!.x);
    const noop = await runCli(env, 'no-op resync');
    const written = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM tines_users WHERE xmin::text::bigint >= $1)
            + (SELECT count(*) FROM team_memberships WHERE xmin::text::bigint >= $1)
            + (SELECT count(*) FROM change_events WHERE xmin::text::bigint >= $1) AS n`,
      [before],
    );
    const noopRowsWritten = Number(written.rows[0]!.n);

    const eventsBefore = Number(await counts());
    const churned = await fake.send('churn 1 1 1');
    log(`churn: ${JSON.stringify(churned)}`);
    const churn = await runCli(env, 'churn resync');
    const churnEvents = Number(await counts()) - eventsBefore;

    const floorMs = await writeFloor(db, tmp);
    log(
      `write floor: ${floorMs} ms to COPY the rows the first sync wrote (users, memberships, events) into copies of their tables, indexes included (initial_ms is ${(initial.ms / floorMs).toFixed(2)}x this)`,
    );
    const keysFloorMs = await writeFloor(db, tmp, true);
    log(`write floor with primary keys only: ${keysFloorMs} ms (the same rows, no secondary index)`);
    log(
      `targets: churn_ms - confirm_ms = ${churn.ms - churn.confirmMs} ms against 2.0 x noop_ms = ${2 * noop.ms} ms; initial_ms = ${initial.ms} ms against 1.5 x write_floor_ms = ${Math.round(1.5 * floorMs)} ms`,
    );

    const result = {
      users,
      pages,
      fetch_ms: fetchMs,
      copy_ms: copyMs,
      initial_ms: initial.ms,
      noop_ms: noop.ms,
      noop_rows_written: noopRowsWritten,
      churn_ms: churn.ms,
      confirm_ms: churn.confirmMs,
      churn_events: churnEvents,
      expected_churn_events: Number(churned.expectedEvents),
      peak_rss_mb: Math.max(initial.rssMb, noop.rssMb, churn.rssMb),
      write_floor_ms: floorMs,
      initial_ratio: Number((initial.ms / (fetchMs + copyMs)).toFixed(2)),
      noop_ratio: Number((noop.ms / fetchMs).toFixed(2)),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    fake.stop();
    agent.destroy();
    await db.end();
    if (!values['keep-db']) await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`[bench] failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
