// The real daemon (`node dist/bin/cli.js run`) as a child process: an
// environment built from scratch, its pino JSON lines collected from stdout,
// waits on log lines and on database conditions, and a stop that never leaves
// a child behind (SIGKILL fallback; killAllDaemons() for afterEach/afterAll).
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { queryThroughGateway } from '../../src/daemon/local-gateway.js';
import type { FakeTines } from '../../src/fake/tines-server.js';
import type { TestDb } from './backends.js';
import { childCwd, childEnv, CLI, runCli as runCliIn, type CliResult } from './cli.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd('tines-connector-daemon-cwd-');

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };
export type LogMatcher = string | RegExp | ((line: LogLine) => boolean);
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

const live = new Set<DaemonProcess>();
// A worker that dies must not leave daemons behind.
process.once('exit', () => {
  for (const d of live) d.child.kill('SIGKILL');
});

export function baseEnv(): Record<string, string> {
  return childEnv({ LOG_LEVEL: 'info' });
}

/**
 * The daemon's variables for `fake` and `testDb`: pages of 20, no rate limit to
 * speak of, one retry, 5 s timeouts; `vars` (the key at least) add or replace.
 */
export function daemonEnv(fake: FakeTines, testDb: TestDb, vars: Record<string, string>): Record<string, string> {
  return {
    TINES_TENANT_DOMAIN: fake.url,
    TINES_PAGE_SIZE: '20',
    TINES_REQUESTS_PER_MINUTE: '100000',
    TINES_MAX_RETRIES: '1',
    TINES_TIMEOUT_MS: '5000',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...vars,
    ...testDb.env,
  };
}

/** A TCP port nobody listens on right now (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => done(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function matches(line: LogLine, m: LogMatcher): boolean {
  if (typeof m === 'string') return line.msg === m;
  if (m instanceof RegExp) return typeof line.msg === 'string' && m.test(line.msg);
  return m(line);
}

export class DaemonProcess {
  /** Parsed JSON lines of stdout, in order. */
  readonly lines: LogLine[] = [];
  /** Every stdout line as written (including any that are not JSON). */
  readonly rawLines: string[] = [];
  stderr = '';
  exit: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  private partial = '';
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly child: ChildProcess,
    readonly healthPort: number,
    readonly env: Record<string, string>,
    readonly label: string,
  ) {
    live.add(this);
    child.stdout!.on('data', (d: Buffer) => {
      const text = this.partial + d.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      for (const l of parts) this.addLine(l);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')));
    this.exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        if (this.partial) this.addLine(this.partial);
        this.partial = '';
        this.exit = { code, signal, at: Date.now() };
        live.delete(this);
        this.notify();
        done(this.exit);
      });
    });
  }

  private addLine(l: string): void {
    if (!l.trim()) return;
    this.rawLines.push(l);
    try {
      this.lines.push(JSON.parse(l) as LogLine);
    } catch {
      this.lines.push({ msg: `(not JSON) ${l}` });
    }
    this.notify();
  }

  private notify(): void {
    for (const f of [...this.listeners]) f();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** All of stdout and stderr, for "no secret anywhere" checks. */
  get output(): string {
    return `${this.rawLines.join('\n')}\n${this.partial}\n${this.stderr}`;
  }

  logs(m: LogMatcher): LogLine[] {
    return this.lines.filter((l) => matches(l, m));
  }

  /** The last lines, for failure messages. */
  tail(n = 25): string {
    const out = this.rawLines.slice(-n).join('\n');
    return `--- ${this.label} (pid ${this.child.pid}) last stdout lines ---\n${out}${this.stderr ? `\n--- stderr ---\n${this.stderr.slice(-4000)}` : ''}`;
  }

  /** Resolves with the first line (at index >= from) that matches; rejects on timeout or exit. */
  waitForLog(m: LogMatcher, opts: { timeoutMs?: number; from?: number } = {}): Promise<LogLine> {
    const { timeoutMs = 15_000 } = opts;
    const from = Math.max(0, opts.from ?? 0);
    return new Promise((done, fail) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: Error, line?: LogLine) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) fail(err);
        else done(line!);
      };
      const check = () => {
        for (let i = from; i < this.lines.length; i++) {
          if (matches(this.lines[i]!, m)) return finish(undefined, this.lines[i]);
        }
        if (this.exit)
          finish(new Error(`${this.label} exited (code ${this.exit.code}, signal ${this.exit.signal}) before logging ${String(m)}\n${this.tail()}`));
      };
      timer = setTimeout(() => finish(new Error(`no log line ${String(m)} from ${this.label} within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Resolves once `count` lines match. */
  async waitForLogs(m: LogMatcher, count: number, opts: { timeoutMs?: number } = {}): Promise<LogLine[]> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    let from = 0;
    for (let k = 0; k < count; k++) {
      const line = await this.waitForLog(m, { from, timeoutMs: Math.max(1, deadline - Date.now()) });
      from = this.lines.indexOf(line) + 1;
    }
    return this.logs(m);
  }

  signal(sig: NodeJS.Signals): boolean {
    return this.alive ? this.child.kill(sig) : false;
  }

  /** Sends the signal and waits for the exit; after timeoutMs, SIGKILL and throw. */
  async stop(opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<ExitInfo & { ms: number }> {
    const { signal = 'SIGTERM', timeoutMs = 15_000 } = opts;
    const sent = Date.now();
    if (!this.alive) return { ...(await this.exited), ms: 0 };
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      const tail = this.tail();
      await this.kill();
      throw new Error(`${this.label} did not exit within ${timeoutMs} ms of ${signal}; killed\n${tail}`);
    }
    const exit = await this.exited;
    return { ...exit, ms: exit.at - sent };
  }

  /** SIGKILL unless already gone; waits for the exit. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await Promise.race([this.exited, sleep(5_000)]);
  }

  /** GET on the health server. */
  async get(path: string): Promise<{ status: number; body: string; contentType: string | null }> {
    const res = await fetch(`http://127.0.0.1:${this.healthPort}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
  }
}

/**
 * Spawns `node dist/bin/cli.js run` with PATH, HOME, LOG_LEVEL=info, a free
 * HEALTH_PORT (unless given) and `env`; nothing else of this process's environment.
 */
export async function spawnDaemon(env: Record<string, string>, opts: { label?: string } = {}): Promise<DaemonProcess> {
  const healthPort = env.HEALTH_PORT !== undefined ? Number(env.HEALTH_PORT) : await freePort();
  const full = { ...baseEnv(), HEALTH_PORT: String(healthPort), ...env };
  const child = spawn(process.execPath, [CLI, 'run'], { cwd: CHILD_CWD, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  return new DaemonProcess(child, healthPort, full, opts.label ?? 'daemon');
}

/** Kills every daemon still running (afterEach/afterAll). */
export async function killAllDaemons(): Promise<void> {
  await Promise.all([...live].map((d) => d.kill()));
}

/** Polls fn until it returns something other than undefined/false/null; the last error is reported on timeout. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const { timeoutMs = 15_000, intervalMs = 250, what = 'condition' } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      last = v;
      if (v !== undefined && v !== null && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? `; last error: ${(lastErr as Error).message}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Runs the CLI once (not the daemon): exit code, stdout, stderr. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return runCliIn(args, { ...baseEnv(), ...env }, { cwd: CHILD_CWD, timeoutMs });
}

/**
 * Read access to the test database. PostgreSQL: a fresh direct connection per
 * statement (so pg_terminate_backend elsewhere cannot break it). Embedded:
 * only one process may open the data directory, so while a daemon runs,
 * `rows` goes through its unix-socket read gateway (what `tines-connector
 * query` uses) and `cliRows` runs `tines-connector query "<SQL>" --json`
 * itself; `offlineRows` opens the directory in this process, for use only
 * once no daemon runs.
 */
export interface SqlReader {
  rows<R = Record<string, unknown>>(sql: string): Promise<R[]>;
  one<R = Record<string, unknown>>(sql: string): Promise<R>;
  cliRows<R = Record<string, unknown>>(sql: string): Promise<R[]>;
  offlineRows<R = Record<string, unknown>>(sql: string): Promise<R[]>;
  /** Several offline statements on one opening of the database. */
  offline<T>(fn: (rows: <R = Record<string, unknown>>(sql: string) => Promise<R[]>) => Promise<T>): Promise<T>;
}

export function sqlReader(testDb: TestDb, cliEnv: Record<string, string>): SqlReader {
  const direct = async <R>(sql: string): Promise<R[]> => {
    const c = new pg.Client({ connectionString: testDb.env.DATABASE_URL, connectionTimeoutMillis: 5_000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(sql)).rows as R[];
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  const rows = async <R>(sql: string): Promise<R[]> => {
    if (testDb.backend === 'postgres') return direct<R>(sql);
    const r = await queryThroughGateway(testDb.env.DATA_DIR!, sql);
    if (r === undefined) throw new Error(`no daemon serves the embedded database in ${testDb.env.DATA_DIR} (yet)`);
    return r as R[];
  };
  const cliRows = async <R>(sql: string): Promise<R[]> => {
    const { HEALTH_PORT: _port, ...env } = cliEnv;
    const r = await runCli(['query', sql, '--json'], { ...env, ...testDb.env, LOG_LEVEL: 'warn' });
    if (r.code !== 0) throw new Error(`query exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return JSON.parse(r.stdout) as R[];
  };
  const offline = async <T>(fn: (rows: <R = Record<string, unknown>>(sql: string) => Promise<R[]>) => Promise<T>): Promise<T> => {
    if (testDb.backend === 'postgres') return fn(direct);
    const db = await testDb.open();
    try {
      return await fn(async <R>(sql: string) => (await db.query<R>(sql)).rows);
    } finally {
      await db.close();
    }
  };
  return {
    rows,
    cliRows,
    offline,
    offlineRows: <R>(sql: string) => offline((q) => q<R>(sql)),
    one: async <R>(sql: string) => {
      const all = await rows<R>(sql);
      if (all.length !== 1) throw new Error(`expected one row, got ${all.length}: ${sql}`);
      return all[0]!;
    },
  };
}

export interface RunInterval {
  id: number;
  status: string;
  trigger: string;
  started: number;
  finished: number | null;
  pid?: number | null;
  error_kind?: string | null;
}

/** Every run of the database, times as epoch seconds (so no timestamp text parsing). */
export const RUNS_SQL = `SELECT id::int AS id, status, trigger, pid, error_kind,
  extract(epoch FROM started_at)::float8 AS started, extract(epoch FROM finished_at)::float8 AS finished
  FROM sync_runs ORDER BY id`;

/** Pairs of runs whose [started_at, finished_at] intervals meet or overlap; a run still going counts as open-ended. */
export function overlappingRuns(runs: RunInterval[]): string[] {
  const bad: string[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = runs[i]!;
      const b = runs[j]!;
      const aEnd = a.finished ?? Infinity;
      const bEnd = b.finished ?? Infinity;
      if (!(aEnd < b.started || bEnd < a.started)) {
        bad.push(`run ${a.id} [${a.started}, ${a.finished}] (pid ${a.pid ?? '?'}) overlaps run ${b.id} [${b.started}, ${b.finished}] (pid ${b.pid ?? '?'})`);
      }
    }
  }
  return bad;
}
