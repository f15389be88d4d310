// /healthz (the process runs), /readyz (database answers, schema current),
// /metrics (Prometheus text). Nothing else is served.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Database } from '../db/database.js';
import { migrationState } from '../db/migrate.js';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';

const READY_TIMEOUT_MS = 3_000;

class ReadinessTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new ReadinessTimeout(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/**
 * Ready when the database answers and every migration is applied. The embedded
 * database answers nothing while a sync's diff transaction holds its one
 * session: a check that times out then, right after a ready one, stays ready.
 */
export async function readiness(
  db: Database,
  opts: { syncInFlight?: () => boolean; lastReady?: boolean } = {},
): Promise<{ ready: boolean; reason?: string }> {
  try {
    const state = await withTimeout(migrationState(db), READY_TIMEOUT_MS);
    if (state.unknown.length > 0) return { ready: false, reason: `database schema is newer than this build (${state.unknown.join(', ')})` };
    if (state.pending.length > 0) return { ready: false, reason: `migrations pending: ${state.pending.map((m) => m.name).join(', ')}` };
    return { ready: true };
  } catch (err) {
    if (err instanceof ReadinessTimeout && db.backend === 'embedded' && opts.lastReady && opts.syncInFlight?.()) {
      return { ready: true, reason: 'the database is busy with a sync' };
    }
    return { ready: false, reason: `database: ${(err as Error).message}` };
  }
}

export async function startHealthServer(port: number, db: Database, metrics: Metrics, log: Logger, syncInFlight?: () => boolean): Promise<http.Server> {
  let lastReady = false;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, '{"error":"method not allowed"}');
    if (path === '/healthz') return reply(200, '{"status":"ok"}');
    if (path === '/readyz') {
      void readiness(db, { syncInFlight, lastReady }).then((r) => {
        lastReady = r.ready;
        reply(r.ready ? 200 : 503, JSON.stringify(r.ready ? { status: 'ready', ...(r.reason ? { note: r.reason } : {}) } : { status: 'not ready', reason: r.reason }));
      });
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => reply(200, text, metrics.registry.contentType),
        (err: Error) => reply(500, JSON.stringify({ error: err.message })),
      );
      return;
    }
    reply(404, '{"error":"not found"}');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: { message: err.message } }, 'health server error'));
  log.info({ port: (server.address() as AddressInfo).port }, 'health server listening: /healthz /readyz /metrics');
  return server;
}
