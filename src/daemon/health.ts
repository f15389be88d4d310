// /healthz (the process runs), /readyz (database answers, schema current),
// /metrics (Prometheus text). Nothing else is served. Up before the database.
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
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new ReadinessTimeout(`no answer within ${ms} ms`)), ms)))]).finally(
    () => clearTimeout(timer),
  );
}

/**
 * Ready when the database answers and every migration is applied. The embedded
 * database answers nothing while a sync's diff transaction holds its one
 * session: a check that times out then, right after a ready one, stays ready.
 */
export async function readiness(db: Database, opts: { syncInFlight?: () => boolean; lastReady?: boolean } = {}): Promise<{ ready: boolean; reason?: string }> {
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

/** What /readyz and /metrics answer from, once the database is open and migrated. */
export interface HealthSource {
  db: Database;
  metrics: Metrics;
  syncInFlight?: () => boolean;
}

/**
 * The health server, up before the database: `run` listens first, so /healthz
 * answers while the database is still being reached; until serve() hands it
 * the database, /readyz (and /metrics) answer 503 with the reason starting() gave.
 */
export class HealthServer {
  private source: HealthSource | undefined;
  private waitingFor = 'starting: connecting to the database';
  private lastReady = false;

  private constructor(private readonly server: http.Server) {}

  static async listen(port: number, log: Logger): Promise<HealthServer> {
    let health!: HealthServer;
    const server = http.createServer((req, res) => health.handle(req, res));
    health = new HealthServer(server);
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err: { message: err.message } }, 'health server error'));
    log.info({ port: health.port }, 'health server listening: /healthz /readyz /metrics');
    return health;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Not ready yet, and why (the database is being reached). */
  starting(reason: string): void {
    this.waitingFor = reason;
  }

  /** The database is open and migrated: /readyz and /metrics answer from it from now on. */
  serve(source: HealthSource): void {
    this.source = source;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, '{"error":"method not allowed"}');
    if (path === '/healthz') return reply(200, '{"status":"ok"}');
    if (path !== '/readyz' && path !== '/metrics') return reply(404, '{"error":"not found"}');
    const source = this.source;
    if (!source)
      return reply(503, JSON.stringify(path === '/readyz' ? { status: 'not ready', reason: this.waitingFor } : { error: `not ready: ${this.waitingFor}` }));
    if (path === '/readyz') {
      void readiness(source.db, { syncInFlight: source.syncInFlight, lastReady: this.lastReady }).then((r) => {
        this.lastReady = r.ready;
        reply(
          r.ready ? 200 : 503,
          JSON.stringify(r.ready ? { status: 'ready', ...(r.reason ? { note: r.reason } : {}) } : { status: 'not ready', reason: r.reason }),
        );
      });
      return;
    }
    source.metrics.registry.metrics().then(
      (text) => reply(200, text, source.metrics.registry.contentType),
      (err: Error) => reply(500, JSON.stringify({ error: err.message })),
    );
  }
}
