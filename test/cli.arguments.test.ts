// The command line as a user types it, through the built bin: `--help` of every
// command in the table prints its usage and runs nothing (no database created
// or connected to, no request to Tines, no demo started); an unknown flag, a
// missing value or a stray argument exits 2 naming it; `--version` prints the
// package's version.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/command-line.js';
import { FakeTines } from '../src/fake/tines-server.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';

const CHILD_CWD = childCwd();
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

describe('the command line', () => {
  let fake: FakeTines;
  let pgStandIn: Server;
  const connections: number[] = [];
  let scratch: string;

  beforeAll(async () => {
    fake = await FakeTines.start({ apiKey: 'k' });
    // A listener standing in for a PostgreSQL server: any connection attempt shows here.
    pgStandIn = createServer((sock) => {
      connections.push(Date.now());
      sock.destroy();
    });
    await new Promise<void>((r) => pgStandIn.listen(0, '127.0.0.1', () => r()));
    scratch = mkdtempSync(join(tmpdir(), 'tines-connector-args-'));
  });
  afterAll(async () => {
    await fake?.close();
    await new Promise((r) => pgStandIn?.close(r));
    rmSync(scratch, { recursive: true, force: true });
  });

  /** An environment where running anything would leave a trace: a Tines fake, a database stand-in or a DATA_DIR, and a TMPDIR for the demo. */
  function tracedEnv(kind: 'embedded' | 'server', tag: string) {
    const tmpDir = mkdtempSync(join(scratch, `t-${tag}-`));
    const dataDir = join(scratch, `data-${tag}`);
    const env: Record<string, string> = { TINES_TENANT_DOMAIN: fake.url, TINES_API_KEY: 'k', TMPDIR: tmpDir, DATA_DIR: dataDir };
    if (kind === 'server') env.DATABASE_URL = `postgres://u@127.0.0.1:${(pgStandIn.address() as AddressInfo).port}/db`;
    return { env: childEnv(env), dataDir, tmpDir };
  }

  function expectNothingRan(t: { dataDir: string; tmpDir: string }, what: string) {
    expect(fake.requests, `${what}: a request reached Tines`).toHaveLength(0);
    expect(connections, `${what}: a connection reached the database`).toEqual([]);
    expect(existsSync(t.dataDir), `${what}: DATA_DIR was created`).toBe(false);
    expect(readdirSync(t.tmpDir), `${what}: something was written to TMPDIR`).toEqual([]);
  }

  const invocations = COMMANDS.flatMap((c) => {
    const words = c.name.split(' ');
    const firstFlag = Object.keys(c.flags ?? {})[0];
    return [
      { label: `${c.name} --help`, argv: [...words, '--help'], command: c.name },
      { label: `${c.name} -h`, argv: [...words, '-h'], command: c.name },
      { label: `help ${c.name}`, argv: ['help', ...words], command: c.name },
      // --help wins over whatever else is on the line, even flags that would run something.
      ...(firstFlag
        ? [
            {
              label: `${c.name} --${firstFlag} … --help`,
              argv: [...words, `--${firstFlag}`, ...(c.flags![firstFlag]!.type === 'string' ? ['2'] : []), '--help'],
              command: c.name,
            },
          ]
        : []),
      ...(c.positionals?.length ? [{ label: `${c.name} <arg> --help`, argv: [...words, 'SELECT 1', '--help'], command: c.name }] : []),
    ];
  });

  it.each(invocations)('`$label` prints its usage, exits 0 and runs nothing (both database kinds)', async ({ label, argv, command }) => {
    for (const kind of ['embedded', 'server'] as const) {
      const t = tracedEnv(kind, `${label.replace(/\W+/g, '-')}-${kind}`);
      const r = await runCli(argv, t.env, { cwd: CHILD_CWD, timeoutMs: 15_000 });
      expect(r.code, `${label}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: tines-connector ${command}\\b`));
      expect(r.stdout).toMatch(/-h, --help/);
      expect(r.stderr).toBe('');
      expectNothingRan(t, label);
    }
  });

  it('every command of the table is in the overview, and `--help` / `help` print it with exit 0', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = await runCli(argv, childEnv(), { cwd: CHILD_CWD });
      expect(r.code).toBe(0);
      for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c.name}`);
    }
  });

  it('`--version`, `-V` and `version` print the package version', async () => {
    for (const argv of [['--version'], ['-V'], ['version']]) {
      const r = await runCli(argv, childEnv(), { cwd: CHILD_CWD });
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(`tines-connector ${VERSION}`);
    }
  });

  it.each([
    { argv: ['report', '--jsn'], names: '--jsn' },
    { argv: ['status', '--bogus'], names: '--bogus' },
    { argv: ['sync', '--allow-mass-removals'], names: '--allow-mass-removals' },
    { argv: ['migrate', '--force'], names: '--force' },
    { argv: ['demo', '--sync', '2'], names: '--sync' },
    { argv: ['delete', '--yes=no'], names: '--yes' },
    { argv: ['demo', '--syncs'], names: '--syncs' },
    { argv: ['query', '--format'], names: '--format' },
    { argv: ['query'], names: 'SQL' },
    { argv: ['status', 'extra'], names: 'extra' },
    { argv: ['query', 'SELECT 1', 'SELECT 2'], names: 'SELECT 2' },
    { argv: ['run', '--once'], names: '--once' },
  ])('`$argv` exits 2 naming $names, and runs nothing', async ({ argv, names }) => {
    const t = tracedEnv('embedded', argv.join('-').replace(/\W+/g, '-'));
    const r = await runCli(argv, t.env, { cwd: CHILD_CWD, timeoutMs: 15_000 });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain(names);
    expect(r.stderr).toMatch(new RegExp(`usage: tines-connector ${argv[0]}`));
    expect(r.stdout).toBe('');
    expectNothingRan(t, argv.join(' '));
  });

  it('an unknown command exits 2 naming it', async () => {
    const r = await runCli(['frobnicate', '--help'], childEnv(), { cwd: CHILD_CWD });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });
});
