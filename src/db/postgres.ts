// The PostgreSQL server backend: a pg Pool, COPY through pg-copy-streams.
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { lockKeyOf, type Database, type QueryOptions, type QueryResult, type Session } from './database.js';

// Timestamps and bigints come back as text: no time zone surprises, no lost precision.
const types = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 1184 || oid === 1114) return (v: string) => v;
    if (oid === 20) return (v: string) => (Number.isSafeInteger(Number(v)) ? Number(v) : v);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

/** A query's config: the statement, its values, and the row mode and text types QueryOptions asks for. */
function queryConfig(text: string, params: readonly unknown[] | undefined, opts: QueryOptions | undefined): pg.QueryConfig {
  const textTypes = opts?.textTypes;
  return {
    name: opts?.name,
    text,
    values: params as unknown[] | undefined,
    queryMode: 'extended',
    ...(opts?.rowMode ? { rowMode: opts.rowMode } : {}),
    ...(textTypes
      ? {
          types: {
            getTypeParser: ((oid: number, format?: string) =>
              textTypes.includes(oid) ? (v: string) => v : types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
          },
        }
      : {}),
  } as pg.QueryConfig;
}

function resultOf<R>(r: pg.QueryResult, opts: QueryOptions | undefined): QueryResult<R> {
  return {
    rows: r.rows as R[],
    rowCount: r.rowCount ?? 0,
    ...(opts?.rowMode ? { fields: r.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID })) } : {}),
  };
}

export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `postgres://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export class PostgresDatabase implements Database {
  readonly backend = 'postgres' as const;
  readonly description: string;
  private readonly pool: pg.Pool;

  constructor(url: string, log: Logger, opts: { max?: number; applicationName?: string } = {}) {
    this.description = describeUrl(url);
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      // A half-open connection would keep holding a sync's advisory lock; TCP keepalive finds it.
      keepAlive: true,
      // The server's side of the same: a process that vanished (a node lost, not a process killed,
      // whose socket the kernel closes) holds its sync's advisory lock until the server notices.
      // Probing after 30 s idle, it notices within about a minute, not the OS default of two hours.
      options: '-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3',
      application_name: opts.applicationName ?? 'tines-connector',
      types,
    });
    // An idle client that loses its server must not crash the process; the pool replaces it.
    this.pool.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'idle database connection failed'));
  }

  async query<R>(text: string, params?: readonly unknown[], opts?: QueryOptions): Promise<QueryResult<R>> {
    // A pool's query carries no prepared statement name (it may land on any connection).
    return resultOf<R>(await this.pool.query(queryConfig(text, params, { ...opts, name: undefined })), opts);
  }

  async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      return await fn(new PgSession(client));
    } catch (err) {
      if (!broken && isConnectionError(err)) broken = err as Error;
      throw err;
    } finally {
      client.off('error', onError);
      // A connection in an unknown state is destroyed, never handed back.
      client.release(broken ?? undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return (
    code.startsWith('08') || code === '57P01' || code === 'ECONNRESET' || code === 'EPIPE' || /Connection terminated/i.test(String((err as Error)?.message))
  );
}

class PgSession implements Session {
  constructor(private readonly client: pg.PoolClient) {}

  async query<R>(text: string, params?: readonly unknown[], opts?: QueryOptions): Promise<QueryResult<R>> {
    return resultOf<R>(await this.client.query(queryConfig(text, params, opts)), opts);
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }

  async copyText(table: string, columns: readonly string[], text: string | Uint8Array): Promise<void> {
    if (text.length === 0) return;
    const stream = this.client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`));
    await pipeline(Readable.from([text]), stream);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.client.query('BEGIN');
    try {
      const result = await fn();
      await this.client.query('COMMIT');
      return result;
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async tryLock(key: string): Promise<boolean> {
    const r = await this.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lockKeyOf(key)]);
    return r.rows[0]?.ok === true;
  }

  async unlock(key: string): Promise<void> {
    await this.client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKeyOf(key)]);
  }
}
