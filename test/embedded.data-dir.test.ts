// The embedded database: its data survives a restart in the same DATA_DIR, and
// a second process on a busy DATA_DIR gets a clear error instead of a corrupted
// directory (while read-only commands reach the running daemon through it).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockDataDir } from '../src/db/data-dir-lock.js';
import { EmbeddedDatabase } from '../src/db/embedded.js';
import { startReadGateway } from '../src/daemon/local-gateway.js';
import { DataDirBusyError } from '../src/errors.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { runSync } from '../src/sync/run-sync.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';
import { createHarness, type Harness } from './helpers/harness.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const cwd = childCwd('tines-connector-embedded-cwd-');
// A child that hangs is killed no sooner than the test itself would time out (vitest's testTimeout).
const cli = (args: string[], env: Record<string, string>) => runCli(args, childEnv({ LOG_LEVEL: 'warn', ...env }), { cwd, timeoutMs: 60_000 });

describe('embedded database', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('embedded', generateUsers(30, { seed: 21 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(() => h?.close());

  it('a second opening of a busy DATA_DIR fails with an error naming the directory, in process and from the CLI', async () => {
    const dataDir = h.env.DATA_DIR!;
    await expect(EmbeddedDatabase.open(dataDir)).rejects.toBeInstanceOf(DataDirBusyError);
    const r = await cli(['sync'], h.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(dataDir);
    expect(r.stderr).toMatch(/in use by another tines-connector process/);
    expect(r.stderr).toMatch(/DATABASE_URL/);
    // Nothing was damaged: the holder still reads its data.
    expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users')).n).toBe(30);
  });

  it('read-only commands reach the process holding the data through its gateway; writes are refused', async () => {
    const gateway = await startReadGateway(h.db, h.env.DATA_DIR!, h.logs.logger);
    try {
      const q = await cli(['query', 'SELECT count(*)::int AS n FROM present_users', '--json'], h.env);
      expect(q.code).toBe(0);
      expect(JSON.parse(q.stdout)).toEqual([{ n: 30 }]);
      const status = await cli(['status', '--json'], h.env);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout).connectors[0]).toMatchObject({ name: 'tines', users_present: 30 });
      const sneaky = await cli(['query', "SELECT set_config('default_transaction_read_only', 'on', false)"], h.env);
      expect(sneaky.code).toBe(1);
      expect(sneaky.stderr).toMatch(/session settings are refused/);
      const write = await cli(['query', 'DELETE FROM tines_users'], h.env);
      expect(write.code).toBe(1);
      expect(write.stderr).toMatch(/read-only/);
      expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users')).n).toBe(30);
    } finally {
      await gateway.stop();
    }
  });

  it('`sync` against a busy DATA_DIR asks the process holding it to run the sync', async () => {
    const calls: boolean[] = [];
    const gateway = await startReadGateway(h.db, h.env.DATA_DIR!, h.logs.logger, {
      connectorName: 'tines',
      // The daemon serves "tines" only: a sync of another connector is not started.
      syncNow: (name, { allowMassRemoval }) => {
        if (name !== 'tines') return undefined;
        calls.push(allowMassRemoval);
        return runSync({ config: h.config(), db: h.db, log: h.logs.logger }, { trigger: 'manual', allowMassRemoval });
      },
    });
    try {
      const r = await cli(['sync', '--allow-mass-removal'], h.env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/sync succeeded/);
      expect(r.stdout).toMatch(/run by the daemon/);
      expect(calls).toEqual([true]);
      // Another connector cannot be synced through a daemon that runs this one.
      const other = await cli(['sync'], { ...h.env, CONNECTOR_NAME: 'other' });
      expect(other.code).toBe(1);
      expect(other.stderr).toMatch(/does not serve a connector named "other"/);
      expect(calls).toEqual([true]);
      const runs = await h.one<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE trigger = 'manual' AND status = 'succeeded'`);
      expect(runs.n).toBe(2);
    } finally {
      await gateway.stop();
    }
  });

  it('a lock file left by a process that is gone is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tines-connector-stale-lock-'));
    try {
      writeFileSync(join(dir, 'tines-connector.pid'), '999999\n'); // no such process
      const release = lockDataDir(dir);
      expect(readFileSync(join(dir, 'tines-connector.pid'), 'utf8').split('\n')[0]).toBe(String(process.pid));
      expect(() => lockDataDir(dir)).toThrow(DataDirBusyError);
      release();
      expect(existsSync(join(dir, 'tines-connector.pid'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The holder's identity comes from /proc (Linux); elsewhere only the pid is checked.
  it.runIf(existsSync('/proc/self/stat'))(
    'a lock file whose pid now belongs to another process is taken over; its live holder, or an old pid-only file, keeps it',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tines-connector-reused-pid-'));
      const lock = join(dir, 'tines-connector.pid');
      const other = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        // The lock file records who its holder was; a live process with that pid but another start is not it.
        const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
        writeFileSync(lock, `${other.pid}\n${boot}:1\n`);
        const release = lockDataDir(dir);
        const [pid, identity] = readFileSync(lock, 'utf8').split('\n');
        expect(pid).toBe(String(process.pid));
        expect(identity).toMatch(new RegExp(`^${boot}:\\d+$`));
        release();
        // The holder itself (here: a process whose identity the file records truly) keeps it.
        const stat = readFileSync(`/proc/${other.pid}/stat`, 'utf8');
        writeFileSync(lock, `${other.pid}\n${boot}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}\n`);
        expect(() => lockDataDir(dir)).toThrow(/in use by another tines-connector process .*delete .*tines-connector\.pid/s);
        // A file of an earlier version (a pid only) of a live process: busy, as before.
        writeFileSync(lock, `${other.pid}\n`);
        expect(() => lockDataDir(dir)).toThrow(DataDirBusyError);
      } finally {
        other.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('keeps its data across a restart in the same DATA_DIR', async () => {
    await h.db.close();
    const again = await EmbeddedDatabase.open(h.env.DATA_DIR!);
    try {
      const r = await again.query<{ n: number; runs: number }>(
        'SELECT (SELECT count(*) FROM tines_users)::int AS n, (SELECT count(*) FROM sync_runs)::int AS runs',
      );
      expect(r.rows[0]).toEqual({ n: 30, runs: 2 });
      const o = await runSync({ config: h.config(), db: again, log: h.logs.logger }, { trigger: 'manual' });
      expect(o.result).toBe('succeeded');
      expect(o.counts.usersAdded).toBe(0);
    } finally {
      await again.close();
    }
  });
});
