// How a failing command speaks to a person, through the built bin: its error
// once (a JSON line only with LOG_FORMAT=json); a refused connection names the
// setting to check; a DATA_DIR the process cannot write says whose it must be.
// And the logs: LOG_FORMAT=json|pretty.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { CLI, childCwd, childEnv, runCli, type CliResult } from './helpers/cli.js';
import { freePort } from './helpers/daemon.js';
import { createTestDb } from './helpers/backends.js';

const CHILD_CWD = childCwd();

describe('errors and logs of one-shot commands', () => {
  let fake: FakeTines;
  let scratch: string;
  let closedPort: number;

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(10, { seed: 3 }), apiKey: 'k' });
    scratch = mkdtempSync(join(tmpdir(), 'tines-connector-errors-'));
    chmodSync(scratch, 0o755);
    closedPort = await freePort();
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('PostgreSQL refusing the connection: one line on stderr naming DATABASE_URL, exit 1', async () => {
    for (const args of [['status'], ['migrate'], ['report']]) {
      const r = await runCli(args, childEnv({ DATABASE_URL: `postgres://u:secret@127.0.0.1:${closedPort}/db` }), { cwd: CHILD_CWD });
      expect(r.code, args[0]).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${closedPort} \\(connection refused\\): check DATABASE_URL`));
      expect(r.stderr).not.toContain('secret');
    }
    const q = await runCli(['query', 'SELECT 1'], childEnv({ DATABASE_URL: `postgres://u@127.0.0.1:${closedPort}/db` }), { cwd: CHILD_CWD });
    expect(q.code).toBe(1);
    expect(q.stderr.trim().split('\n')).toHaveLength(1);
    expect(q.stderr).toMatch(/check DATABASE_URL/);
  });

  it('with LOG_FORMAT=json the error is one JSON line instead', async () => {
    const r = await runCli(['status'], childEnv({ DATABASE_URL: `postgres://u@127.0.0.1:${closedPort}/db`, LOG_FORMAT: 'json' }), { cwd: CHILD_CWD });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { level: string; command: string; msg: string };
    expect(line).toMatchObject({ level: 'error', command: 'status' });
    expect(line.msg).toMatch(/check DATABASE_URL/);
  });

  it('Tines refusing the connection: the sync summary names TINES_TENANT_DOMAIN, exit 1', async () => {
    const r = await runCli(
      ['sync'],
      childEnv({
        TINES_TENANT_DOMAIN: `http://127.0.0.1:${closedPort}`,
        TINES_API_KEY: 'k',
        TINES_MAX_RETRIES: '0',
        DATA_DIR: join(scratch, 'tines-refused'),
        LOG_LEVEL: 'silent',
      }),
      {
        cwd: CHILD_CWD,
      },
    );
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/network/);
    expect(r.stdout).toMatch(/TINES_TENANT_DOMAIN/);
  });

  it('a DATA_DIR the process cannot write: says whose it must be, no raw EACCES stack', async () => {
    const locked = join(scratch, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const cwd = join(scratch, 'cwd');
    mkdirSync(cwd, { mode: 0o755 });
    // root writes anywhere: run the child as nobody then; anyone else is kept out by the mode.
    const asRoot = process.getuid?.() === 0;
    const r = await new Promise<CliResult>((done) => {
      const child = spawn(process.execPath, [CLI, 'migrate'], {
        cwd,
        env: childEnv({ DATA_DIR: join(locked, 'data') }),
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
    });
    const uid = asRoot ? 65534 : process.getuid!();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`DATA_DIR ${locked}/data cannot be written by this process \\(uid ${uid}`));
    expect(r.stderr).toMatch(new RegExp(`it must belong to uid ${uid}`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('`sync` refused at a terminal: the error is shown once (its log line), the summary says where it is; piped, the summary carries it', async () => {
    const dataDir = join(scratch, 'tty-sync');
    const env = childEnv({ TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'wrong', DATA_DIR: dataDir, LOG_LEVEL: 'info', TERM: 'dumb' });
    // script(1) gives the child a terminal for stdout and stderr both, as a person has.
    const r = await new Promise<CliResult>((done) => {
      const child = spawn('script', ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} sync`, '/dev/null'], {
        cwd: CHILD_CWD,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', (code, signal) => done({ code, signal, stdout, stderr: '' }));
    });
    expect(r.code, r.stdout).toBe(3);
    expect(r.stdout.match(/Tines answered 401/g), r.stdout).toHaveLength(1);
    expect(r.stdout).toMatch(/auth: see the error above/);
    const piped = await runCli(['sync'], { ...env, LOG_LEVEL: 'silent' }, { cwd: CHILD_CWD });
    expect(piped.code).toBe(3);
    expect(piped.stdout).toMatch(/Tines (answered 401|was not called)/);
  });

  it('`run` with a DATA_DIR it cannot write: exits 2 at once saying whose it must be, instead of retrying a raw EACCES forever', async () => {
    const locked = join(scratch, 'locked-run');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const cwd = join(scratch, 'cwd-run');
    mkdirSync(cwd, { mode: 0o755 });
    const asRoot = process.getuid?.() === 0;
    const r = await new Promise<CliResult>((done) => {
      const env = childEnv({
        DATA_DIR: join(locked, 'data'),
        TINES_TENANT_DOMAIN: 'http://127.0.0.1:1',
        TINES_API_KEY: 'k',
        HEALTH_PORT: '0',
        LOG_LEVEL: 'warn',
      });
      const child = spawn(process.execPath, [CLI, 'run'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        done({ code, signal, stdout, stderr });
      });
    });
    const uid = asRoot ? 65534 : process.getuid!();
    expect(r.signal, r.stdout + r.stderr).toBeNull();
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^tines-connector run: DATA_DIR ${locked}/data cannot be written by this process \\(uid ${uid}.*it must belong to uid ${uid}`),
    );
    expect(r.stdout + r.stderr).not.toMatch(/retrying with backoff/);
  });

  it('LOG_FORMAT=pretty writes text lines, LOG_FORMAT=json (and the default off a terminal) JSON lines; a bad value exits 2', async () => {
    const env = (vars: Record<string, string>) =>
      childEnv({
        TINES_TENANT_DOMAIN: fake.url,
        TINES_API_KEY: 'k',
        DATA_DIR: join(scratch, `logs-${Object.values(vars).join('-') || 'default'}`),
        LOG_LEVEL: 'info',
        ...vars,
      });
    const pretty = await runCli(['sync'], env({ LOG_FORMAT: 'pretty' }), { cwd: CHILD_CWD });
    expect(pretty.code, pretty.stderr).toBe(0);
    const prettyLines = pretty.stderr.trim().split('\n');
    expect(prettyLines.length).toBeGreaterThan(0);
    for (const l of prettyLines) expect(l.startsWith('{'), l).toBe(false);
    expect(pretty.stderr).toMatch(/INFO.*sync succeeded/);
    for (const vars of [{ LOG_FORMAT: 'json' }, {}] as Record<string, string>[]) {
      const json = await runCli(['sync'], env(vars), { cwd: CHILD_CWD });
      expect(json.code, json.stderr).toBe(0);
      const lines = json.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; component?: string });
      expect(lines.some((l) => l.msg === 'sync succeeded')).toBe(true);
    }
    const bad = await runCli(['status'], env({ LOG_FORMAT: 'xml' }), { cwd: CHILD_CWD });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/LOG_FORMAT must be one of json, pretty/);
  });

  it('`run | head`: the daemon stops cleanly when the reader of its log goes, exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'run'], {
      cwd: CHILD_CWD,
      env: childEnv({
        TINES_TENANT_DOMAIN: fake.url,
        TINES_API_KEY: 'k',
        DATA_DIR: join(scratch, 'run-head'),
        HEALTH_PORT: '0',
        SYNC_SCHEDULE: '* * * * * *',
        LOG_LEVEL: 'info',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('a Tines client line carries one component (it was "sync" and "tines-client" both)', async () => {
    fake.faults = [{ status: 503, times: 1 }];
    const r = await runCli(
      ['sync'],
      childEnv({ TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'k', DATA_DIR: join(scratch, 'component'), LOG_LEVEL: 'info', LOG_FORMAT: 'json' }),
      { cwd: CHILD_CWD },
    );
    expect(r.code, r.stderr).toBe(0);
    const retry = r.stderr.split('\n').filter((l) => l.includes('retrying Tines request'));
    expect(retry).toHaveLength(1);
    expect(retry[0]!.match(/"component":/g)).toHaveLength(1);
    expect(JSON.parse(retry[0]!)).toMatchObject({ component: 'tines-client', connector: 'tines' });
  });
});

describe('every failure said once, naming the setting to check', () => {
  const cli = (args: string[], env: Record<string, string>) => runCli(args, childEnv(env), { cwd: CHILD_CWD, timeoutMs: 30_000 });
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'tines-connector-failures-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('LOG_FORMAT=json: a usage error, a configuration error and a failed query are each one JSON line with component "cli"', async () => {
    const usage = await cli(['status', '--bogus'], { LOG_FORMAT: 'json' });
    const config = await cli(['sync'], { LOG_FORMAT: 'json', SYNC_SCHEDULE: '* * *' });
    const query = await cli(['query', 'SELEC 1'], { LOG_FORMAT: 'json', DATA_DIR: join(scratch, 'none') });
    for (const [r, code, what] of [
      [usage, 2, /Unknown option '--bogus'/],
      [config, 2, /SYNC_SCHEDULE/],
      [query, 1, /no embedded database/],
    ] as const) {
      expect(r.code, r.stderr).toBe(code);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      const line = JSON.parse(lines[0]!) as { level: string; component: string; msg: string };
      expect(line).toMatchObject({ level: 'error', component: 'cli' });
      expect(line.msg).toMatch(what);
    }
    // Text for a person: one prefix for every command, `query` too.
    const text = await cli(['query', 'SELEC 1'], { DATA_DIR: join(scratch, 'none') });
    expect(text.stderr).toMatch(/^tines-connector query: /);
    expect(text.stderr).not.toMatch(/query failed/);
  });

  it('`reconnect` that cannot reach Tines: once, on stderr, exit 1', async () => {
    const r = await cli(['reconnect'], {
      TINES_TENANT_DOMAIN: 'http://127.0.0.1:1',
      TINES_API_KEY: 'k',
      TINES_MAX_RETRIES: '0',
      DATA_DIR: join(scratch, 'reconnect'),
      LOG_LEVEL: 'silent',
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tines-connector reconnect: reconnect could not reach Tines: .*TINES_TENANT_DOMAIN/);
    expect(r.stderr.match(/could not reach Tines/g)).toHaveLength(1);
  });

  it('DATA_DIR that is a file; a TINES_API_KEY_FILE that does not exist: named, with the path', async () => {
    const file = join(scratch, 'file');
    writeFileSync(file, 'x');
    const m = await cli(['migrate'], { DATA_DIR: file });
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(
      `tines-connector migrate: DATA_DIR ${file} is not a directory (${file} is a file): point DATA_DIR at a directory (it is created if missing)\n`,
    );
    const k = await cli(['sync'], {
      TINES_TENANT_DOMAIN: 'http://127.0.0.1:1',
      TINES_API_KEY_FILE: join(scratch, 'missing-key'),
      DATA_DIR: join(scratch, 'k'),
    });
    expect(k.code).toBe(2);
    expect(k.stderr).toContain(`TINES_API_KEY_FILE ${join(scratch, 'missing-key')} cannot be read (no such file, ENOENT)`);
  });

  it('`--version extra` exits 2', async () => {
    const r = await cli(['--version', 'extra'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unexpected argument "extra"/);
    expect(r.stdout).toBe('');
  });

  it('HEALTH_PORT in use: `run` names HEALTH_PORT', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((done) => holder.listen(port, done));
    try {
      const r = await cli(['run'], {
        HEALTH_PORT: String(port),
        TINES_TENANT_DOMAIN: 'http://127.0.0.1:1',
        TINES_API_KEY: 'k',
        SYNC_ON_START: 'false',
        DATA_DIR: join(scratch, 'health'),
        LOG_LEVEL: 'silent',
      });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`HEALTH_PORT ${port} is already in use by another process`));
    } finally {
      holder.close();
    }
  });

  it('PostgreSQL: a database that does not exist, a role that does not exist, a server that accepts and never answers: each names DATABASE_URL', async () => {
    const admin = new URL(inject('pgAdminUrl')!);
    const noDb = new URL(admin);
    noDb.pathname = '/tc_no_such_database';
    const noRole = new URL(admin);
    noRole.username = 'tc_no_such_role';
    const a = await cli(['status'], { DATABASE_URL: noDb.toString() });
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/database "tc_no_such_database" does not exist on .*: check the database name in DATABASE_URL/);
    const b = await cli(['status'], { DATABASE_URL: noRole.toString() });
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/tc_no_such_role.*check the user and password in DATABASE_URL/);
    const silent: Server = createServer(() => undefined);
    const port = await freePort();
    await new Promise<void>((done) => silent.listen(port, '127.0.0.1', done));
    try {
      const c = await cli(['status'], { DATABASE_URL: `postgres://u@127.0.0.1:${port}/db` });
      expect(c.code).toBe(1);
      expect(c.stderr).toMatch(new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port} did not answer in time.*check DATABASE_URL`));
      expect(c.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      silent.close();
    }
  }, 40_000);

  it('every log line of a command names its component (status`s unreadable-key warning was without one)', async () => {
    const db = await createTestDb('embedded');
    try {
      const r = await cli(['status'], {
        ...db.env,
        LOG_FORMAT: 'json',
        TINES_TENANT_DOMAIN: 'http://127.0.0.1:1',
        TINES_API_KEY_FILE: join(scratch, 'no-key'),
      });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { component?: string; msg: string });
      expect(lines.find((l) => /cannot read the API key/.test(l.msg))).toMatchObject({ component: 'status' });
      for (const l of lines) expect(typeof l.component, l.msg).toBe('string');
    } finally {
      await db.dispose();
    }
  });
});
