// `run` started while its PostgreSQL does not answer yet (a container that
// starts before its database): the health server is up at once (/healthz 200,
// /readyz 503 with the reason), connect and migrate are retried with backoff,
// and once the database answers it migrates, registers and syncs. SIGTERM
// during the wait exits 0 at once. The database "comes up" as a TCP proxy on
// loopback, opened later on the port DATABASE_URL names, to the real server.
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { FakeTines, generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { freePort, killAllDaemons, spawnDaemon, waitFor, type DaemonProcess } from './helpers/daemon.js';

const KEY = 'tines-db-down-at-start-key-3f9a1c';
const USERS = 45;

/** A TCP proxy on 127.0.0.1:`port` to `target`; close() drops it and every connection through it. */
async function tcpProxy(port: number, target: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done());
  });
  expect((server.address() as AddressInfo).port).toBe(port);
  return {
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}

if (!backends().includes('postgres')) {
  it('has no PostgreSQL server to test against, which only a run without REQUIRE_POSTGRES allows', () => {
    expect(process.env.REQUIRE_POSTGRES).not.toBe('1');
  });
}

describe.each(backends().filter((b) => b === 'postgres'))('run while PostgreSQL is down at start (%s)', () => {
  let fake: FakeTines;
  let admin: URL;
  let dbName: string;
  let proxyPort: number;
  let proxy: { close(): Promise<void> } | undefined;
  let daemon: DaemonProcess | undefined;

  const adminQuery = async <R>(sql: string, database = admin.pathname.slice(1)): Promise<R[]> => {
    const url = new URL(admin);
    url.pathname = `/${database}`;
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      return (await c.query(sql)).rows as R[];
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    fake = await FakeTines.start({ users: generateUsers(USERS, { seed: 131 }), apiKey: KEY });
    admin = new URL(inject('pgAdminUrl')!);
    // A database without the schema: `run` must migrate it once it answers.
    dbName = `tc_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && daemon) console.error(daemon.tail(40));
    await killAllDaemons();
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    await killAllDaemons();
    await fake?.close();
    if (dbName) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  });

  const env = () => {
    const url = new URL(admin);
    url.host = `127.0.0.1:${proxyPort}`;
    url.pathname = `/${dbName}`;
    return {
      TINES_TENANT_DOMAIN: fake.url,
      TINES_API_KEY: KEY,
      TINES_PAGE_SIZE: '20',
      TINES_REQUESTS_PER_MINUTE: '100000',
      SHUTDOWN_TIMEOUT_MS: '5000',
      DATABASE_URL: url.toString(),
    };
  };

  it('serves /healthz and a 503 /readyz with the reason while waiting, then migrates, registers and syncs once the database answers', async () => {
    proxyPort = await freePort();
    daemon = await spawnDaemon(env(), { label: 'daemon (database down at start)' });
    await daemon.waitForLog('health server listening: /healthz /readyz /metrics', { timeoutMs: 15_000 });
    expect((await daemon.get('/healthz')).status).toBe(200);
    await daemon.waitForLog(/^database not ready: /, { timeoutMs: 10_000 });
    const notReady = await daemon.get('/readyz');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toMatchObject({
      status: 'not ready',
      reason: expect.stringMatching(/^waiting for the database \(attempt \d+ failed: cannot reach PostgreSQL at .* \(connection refused\): check DATABASE_URL/),
    });
    expect((await daemon.get('/metrics')).status).toBe(503);
    // A second attempt, later than the first: backoff, not a tight loop, and not an exit.
    await daemon.waitForLog((l) => l.msg?.startsWith('database not ready: ') === true && l.attempt === 2, { timeoutMs: 10_000 });
    const waits = daemon.logs(/^database not ready: /).map((l) => Number(l.retryInMs));
    expect(waits[0]).toBeGreaterThanOrEqual(500);
    expect(waits[1]).toBeGreaterThanOrEqual(1_000);
    expect(daemon.alive).toBe(true);
    expect(daemon.logs('schedule started')).toEqual([]);

    proxy = await tcpProxy(proxyPort, { host: admin.hostname, port: Number(admin.port || 5432) });
    await daemon.waitForLog((l) => l.msg === 'sync succeeded' && l.trigger === 'start', { timeoutMs: 30_000 });
    expect(daemon.logs('database ready')).toHaveLength(1);
    expect(daemon.logs('migration applied').length).toBeGreaterThan(0);
    await waitFor(async () => (await daemon!.get('/readyz')).status === 200, { timeoutMs: 10_000, what: '/readyz 200' });
    const [row] = await adminQuery<{ n: number; c: number }>(
      `SELECT (SELECT count(*) FROM tines_users WHERE removed_at IS NULL)::int AS n, (SELECT count(*) FROM connectors)::int AS c`,
      dbName,
    );
    expect(row).toEqual({ n: USERS, c: 1 });

    const exit = await daemon.stop({ timeoutMs: 10_000 });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(daemon.logs('stopped cleanly')).toHaveLength(1);
    expect(daemon.output).not.toContain(KEY);
  });

  it('SIGTERM while waiting for the database exits 0 at once', async () => {
    proxyPort = await freePort();
    daemon = await spawnDaemon(env(), { label: 'daemon (stopped while waiting)' });
    await daemon.waitForLog(/^database not ready: /, { timeoutMs: 15_000 });
    const exit = await daemon.stop({ timeoutMs: 5_000 });
    expect(exit.code, daemon.tail()).toBe(0);
    expect(exit.ms).toBeLessThan(2_000);
    expect(daemon.logs('stopped while waiting for the database')).toHaveLength(1);
    expect(daemon.logs('schedule started')).toEqual([]);
  });
});
