// `delete --yes` while a daemon serves the same connector: the daemon does not
// register it again (it used to re-create it at the next tick and reload every
// user); it stops syncing it and says so once. PostgreSQL server: delete
// reaches the database beside the daemon. Embedded: the daemon holds DATA_DIR,
// so delete is refused (exit 1) and nothing changes; stop `run` first.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends, createTestDb, type TestDb } from './helpers/backends.js';
import { daemonEnv, killAllDaemons, runCli, sleep, spawnDaemon, sqlReader, type DaemonProcess, type SqlReader } from './helpers/daemon.js';

const KEY = 'tines-daemon-delete-key-8c2f61ab';
const USERS = 30;
const COUNTS = `SELECT (SELECT count(*) FROM connectors)::int AS connectors, (SELECT count(*) FROM tines_users)::int AS users, (SELECT count(*) FROM sync_runs)::int AS runs`;
const DELETED = /^connector "tines" \(id \d+\) was deleted while this process served it; .*: this daemon no longer syncs it$/;

describe.each(backends())('daemon: its connector deleted under it (%s)', (backend) => {
  let fake: FakeTines;
  let testDb: TestDb;
  let env: Record<string, string>;
  let db: SqlReader;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 135 }), apiKey: KEY });
    testDb = await createTestDb(backend);
    env = daemonEnv(fake, testDb, { TINES_API_KEY: KEY, SYNC_SCHEDULE: '* * * * * *' });
    db = sqlReader(testDb, env);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && daemon) console.error(daemon.tail(40));
    await killAllDaemons();
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    await testDb?.dispose();
  });

  if (backend === 'postgres') {
    it('`delete --yes` stays done: the daemon neither registers the connector again nor reloads its users, and says so once', async () => {
      daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
      await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
      await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'schedule', { timeoutMs: 5_000 });

      const { HEALTH_PORT: _port, ...cliEnv } = env;
      const r = await runCli(['delete', '--yes'], { ...cliEnv, LOG_LEVEL: 'warn' });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Deleted connector "tines"/);

      await daemon.waitForLog(DELETED, { timeoutMs: 10_000 });
      // Several one-second ticks later: still gone, nothing reloaded, one line said it.
      await sleep(3_500);
      expect(await db.one(COUNTS)).toEqual({ connectors: 0, users: 0, runs: 0 });
      expect(daemon.logs(DELETED)).toHaveLength(1);
      const saidAt = daemon.lines.findIndex((l) => typeof l.msg === 'string' && DELETED.test(l.msg));
      expect(daemon.lines.slice(saidAt + 1).filter((l) => l.msg === 'sync succeeded' || l.msg === 'sync failed')).toEqual([]);
      expect(daemon.alive).toBe(true);
      expect((await daemon.get('/healthz')).status).toBe(200);

      const exit = await daemon.stop({ timeoutMs: 10_000 });
      expect(exit.code, daemon.tail()).toBe(0);

      // A restart with the connector configured registers it anew.
      daemon = await spawnDaemon(env, { label: `daemon restarted (${backend})` });
      await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
      expect(await db.one(COUNTS)).toMatchObject({ connectors: 1, users: USERS });
      expect((await daemon.stop({ timeoutMs: 10_000 })).code).toBe(0);
    });
  } else {
    it('`delete --yes` cannot reach a DATA_DIR the daemon holds: exit 1 naming the daemon, nothing deleted, the daemon syncs on', async () => {
      daemon = await spawnDaemon(env, { label: `daemon (${backend})` });
      await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 20_000 });
      const { HEALTH_PORT: _port, ...cliEnv } = env;
      const r = await runCli(['delete', '--yes'], { ...cliEnv, LOG_LEVEL: 'warn' });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/in use by another tines-connector process \(pid \d+\)/);
      const from = daemon.lines.length;
      await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'schedule', { timeoutMs: 10_000, from });
      expect(await db.one(COUNTS)).toMatchObject({ connectors: 1, users: USERS });
      expect(daemon.logs(DELETED)).toEqual([]);
      expect((await daemon.stop({ timeoutMs: 10_000 })).code).toBe(0);
    });
  }
});
