// The embedded database: its data survives a restart in the same DATA_DIR, and
// a second process on a busy DATA_DIR gets a clear error instead of a corrupted
// directory (while read-only commands reach the running daemon through it).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDatabase } from '../src/db/embedded.js';
import { startReadGateway } from '../src/db/read-gateway.js';
import { DataDirBusyError } from '../src/errors.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { runSync } from '../src/sync/run-sync.js';
import { createHarness, type Harness } from './helpers/harness.js';

const CLI = resolve('dist/src/cli.js');
const cwd = mkdtempSync(join(tmpdir(), 'tines-connector-embedded-cwd-'));

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('embedded database', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('embedded', generateUsers(30, { seed: 21 }));
    expect((await h.sync()).result).toBe('succeeded');
  });
  afterAll(async () => {
    await h?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

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
      const write = await cli(['query', 'DELETE FROM tines_users'], h.env);
      expect(write.code).toBe(1);
      expect(write.stderr).toMatch(/read-only/);
      expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM tines_users')).n).toBe(30);
    } finally {
      await gateway.stop();
    }
  });

  it('keeps its data across a restart in the same DATA_DIR', async () => {
    await h.db.close();
    const again = await EmbeddedDatabase.open(h.env.DATA_DIR!);
    try {
      const r = await again.query<{ n: number; runs: number }>('SELECT (SELECT count(*) FROM tines_users)::int AS n, (SELECT count(*) FROM sync_runs)::int AS runs');
      expect(r.rows[0]).toEqual({ n: 30, runs: 1 });
      const o = await runSync({ config: h.config(), db: again, log: h.logs.logger }, { trigger: 'manual' });
      expect(o.result).toBe('succeeded');
      expect(o.counts.usersAdded).toBe(0);
    } finally {
      await again.close();
    }
  });
});
