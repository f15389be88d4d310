// How a failing command speaks to a person, through the built bin: its error
// once (a JSON line only with LOG_FORMAT=json); a refused connection names the
// setting to check; a DATA_DIR the process cannot write says whose it must be.
// And the logs: LOG_FORMAT=json|pretty.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { CLI, childCwd, childEnv, runCli, type CliResult } from './helpers/cli.js';
import { freePort } from './helpers/daemon.js';

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
    const r = await runCli(['sync'], childEnv({ TINES_TENANT_DOMAIN: `http://127.0.0.1:${closedPort}`, TINES_API_KEY: 'k', TINES_MAX_RETRIES: '0', DATA_DIR: join(scratch, 'tines-refused'), LOG_LEVEL: 'silent' }), {
      cwd: CHILD_CWD,
    });
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
      const child = spawn(process.execPath, [CLI, 'migrate'], { cwd, env: childEnv({ DATA_DIR: join(locked, 'data') }), stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
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

  it('LOG_FORMAT=pretty writes text lines, LOG_FORMAT=json (and the default off a terminal) JSON lines; a bad value exits 2', async () => {
    const env = (vars: Record<string, string>) =>
      childEnv({ TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'k', DATA_DIR: join(scratch, `logs-${Object.values(vars).join('-') || 'default'}`), LOG_LEVEL: 'info', ...vars });
    const pretty = await runCli(['sync'], env({ LOG_FORMAT: 'pretty' }), { cwd: CHILD_CWD });
    expect(pretty.code, pretty.stderr).toBe(0);
    const prettyLines = pretty.stderr.trim().split('\n');
    expect(prettyLines.length).toBeGreaterThan(0);
    for (const l of prettyLines) expect(l.startsWith('{'), l).toBe(false);
    expect(pretty.stderr).toMatch(/INFO.*sync succeeded/);
    for (const vars of [{ LOG_FORMAT: 'json' }, {}] as Record<string, string>[]) {
      const json = await runCli(['sync'], env(vars), { cwd: CHILD_CWD });
      expect(json.code, json.stderr).toBe(0);
      const lines = json.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; component?: string });
      expect(lines.some((l) => l.msg === 'sync succeeded')).toBe(true);
    }
    const bad = await runCli(['status'], env({ LOG_FORMAT: 'xml' }), { cwd: CHILD_CWD });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/LOG_FORMAT must be one of json, pretty/);
  });

  it('`run | head`: the daemon stops cleanly when the reader of its log goes, exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'run'], {
      cwd: CHILD_CWD,
      env: childEnv({ TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'k', DATA_DIR: join(scratch, 'run-head'), HEALTH_PORT: '0', SYNC_SCHEDULE: '* * * * * *', LOG_LEVEL: 'info' }),
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
    const r = await runCli(['sync'], childEnv({ TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'k', DATA_DIR: join(scratch, 'component'), LOG_LEVEL: 'info', LOG_FORMAT: 'json' }), { cwd: CHILD_CWD });
    expect(r.code, r.stderr).toBe(0);
    const retry = r.stderr.split('\n').filter((l) => l.includes('retrying Tines request'));
    expect(retry).toHaveLength(1);
    expect(retry[0]!.match(/"component":/g)).toHaveLength(1);
    expect(JSON.parse(retry[0]!)).toMatchObject({ component: 'tines-client', connector: 'tines' });
  });
});
