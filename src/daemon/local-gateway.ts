// Local commands while the daemon holds the embedded database. PGlite is one
// process's database with one session, so the daemon serves local CLI commands
// over a unix socket in DATA_DIR: read-only statements (`query`, `status`,
// `report`, under the rules of db/read-only.ts), each in its own READ ONLY
// transaction, which PGlite never interleaves with a sync's transaction; and `sync`, run by the daemon itself.
// (A PostgreSQL wire port onto that one shared session would let a client's
// open transaction or SET capture the daemon's own statements.)
import http from 'node:http';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Database, QueryOptions, ResultField } from '../db/database.js';
import { readOnlyRefusal, readOnlyResult } from '../db/read-only.js';
import type { SyncOutcome } from '../sync/outcome.js';

export const GATEWAY_SOCKET = 'tines-connector.sock';
const MAX_BODY_BYTES = 1 << 20;
/** The most rows `query` gets through the gateway: the daemon holds them (and their JSON) in memory at once. */
export const GATEWAY_MAX_ROWS = 200_000;

export function gatewayPath(dataDir: string): string {
  return join(dataDir, GATEWAY_SOCKET);
}

/**
 * Runs a sync of the named connector in the daemon for `tines-connector sync`:
 * undefined when the daemon does not serve that connector, else a promise of
 * the outcome (undefined when it could not start).
 */
export type SyncNow = (connectorName: string, opts: { allowMassRemoval: boolean }) => Promise<SyncOutcome | undefined> | undefined;

/** What `tines-connector reconnect` reports: Tines' answer to the key in force (its fingerprint). */
export interface ReconnectOutcome {
  result: 'accepted' | 'refused' | 'unreachable';
  fingerprint: string;
  message: string;
}

export interface GatewayOptions {
  /** The environment's connector: a `reconnect` for another one is refused (registered ones go through the admin socket). */
  connectorName: string;
  syncNow: SyncNow;
  /** Runs `reconnect` in the daemon, with the daemon's key. */
  reconnectNow?: () => Promise<ReconnectOutcome>;
}

export async function startReadGateway(db: Database, dataDir: string, log: Logger, sync?: GatewayOptions): Promise<{ stop(): Promise<void> }> {
  const path = gatewayPath(dataDir);
  rmSync(path, { force: true }); // a stale socket of a process that died; the data dir lock says we own it now
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || (req.url !== '/query' && req.url !== '/sync' && req.url !== '/reconnect')) return reply(404, { error: 'not found' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body: { sql?: unknown; params?: unknown; allowMassRemoval?: unknown; connectorName?: unknown; table?: unknown; textTypes?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        return reply(400, { error: 'body must be JSON' });
      }
      if (req.url === '/reconnect') {
        if (!sync?.reconnectNow) return reply(404, { error: 'this process does not reconnect' });
        if (body.connectorName !== sync.connectorName) {
          return reply(409, { error: `the daemon holding this DATA_DIR serves connector "${sync.connectorName}", not "${String(body.connectorName)}"` });
        }
        sync.reconnectNow().then(
          (outcome) => reply(200, { outcome }),
          (err: Error) => reply(500, { error: err.message }),
        );
        return;
      }
      if (req.url === '/sync') {
        if (!sync) return reply(404, { error: 'this process does not run syncs' });
        const started = sync.syncNow(String(body.connectorName), { allowMassRemoval: body.allowMassRemoval === true });
        if (!started) {
          return reply(409, {
            error: `the daemon holding this DATA_DIR does not serve a connector named "${String(body.connectorName)}" (see \`tines-connector connectors list\`)`,
          });
        }
        started.then(
          (outcome) => (outcome ? reply(200, { outcome }) : reply(503, { error: 'the sync could not start; see the daemon log' })),
          (err: Error) => reply(500, { error: err.message }),
        );
        return;
      }
      if (typeof body.sql !== 'string') return reply(400, { error: 'sql must be a string' });
      const refused = readOnlyRefusal(body.sql, { sharedSession: true });
      if (refused) return reply(422, { error: refused });
      const params = Array.isArray(body.params) ? body.params : [];
      // `table`: rows as arrays with their fields (`query`), the types in textTypes as text.
      const textTypes = Array.isArray(body.textTypes) ? body.textTypes.filter((t): t is number => Number.isInteger(t)) : undefined;
      const opts: (QueryOptions & { maxRows?: number }) | undefined =
        body.table === true ? { rowMode: 'array', textTypes, maxRows: GATEWAY_MAX_ROWS } : undefined;
      readOnlyResult(db, body.sql, params, opts).then(
        (r) => reply(200, opts ? { rows: r.rows, fields: r.fields } : { rows: r.rows }),
        (err: Error) => reply(422, { error: err.message }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  log.info({ socket: path }, 'serving read-only queries on the embedded database to local commands');
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rmSync(path, { force: true });
      }),
  };
}

/** POSTs to a running daemon's gateway; undefined when none listens. */
async function callGateway<T>(dataDir: string, path: string, payload: unknown): Promise<T | undefined> {
  const socketPath = gatewayPath(dataDir);
  if (!existsSync(socketPath)) return undefined;
  const data = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: T & { error?: string };
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
          } catch {
            return reject(new Error('the daemon answered with something that is not JSON'));
          }
          if (res.statusCode === 200) resolve(body);
          else reject(new Error(body.error ?? `the daemon answered ${res.statusCode}`));
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? resolve(undefined) : reject(err)));
    req.end(data);
  });
}

/** Runs a read-only statement through a running daemon's gateway; undefined when none listens. */
export async function queryThroughGateway(dataDir: string, sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[] | undefined> {
  return (await callGateway<{ rows: Record<string, unknown>[] }>(dataDir, '/query', { sql, params }))?.rows;
}

/** A read-only statement's rows as arrays with their fields, through a running daemon's gateway; undefined when none listens. */
export async function tableThroughGateway(
  dataDir: string,
  sql: string,
  textTypes: readonly number[],
): Promise<{ rows: unknown[][]; fields: ResultField[] } | undefined> {
  return callGateway<{ rows: unknown[][]; fields: ResultField[] }>(dataDir, '/query', { sql, params: [], table: true, textTypes });
}

/** Asks a running daemon to try its key on Tines now; undefined when none listens. */
export async function reconnectThroughGateway(dataDir: string, connectorName: string): Promise<ReconnectOutcome | undefined> {
  return (await callGateway<{ outcome: ReconnectOutcome }>(dataDir, '/reconnect', { connectorName }))?.outcome;
}

/** Asks a running daemon to sync now; undefined when none listens. */
export async function syncThroughGateway(dataDir: string, connectorName: string, allowMassRemoval: boolean): Promise<SyncOutcome | undefined> {
  return (await callGateway<{ outcome: SyncOutcome }>(dataDir, '/sync', { connectorName, allowMassRemoval }))?.outcome;
}
