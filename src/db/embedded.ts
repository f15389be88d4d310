// The embedded backend: PGlite (PostgreSQL in WebAssembly) in DATA_DIR, one
// process at a time (data-dir-lock.ts). One connection serves every session:
// see Session in database.ts for what that does and does not keep.
import { PGlite, types } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.js';
import { embeddedClusterPath, type Database, type QueryOptions, type QueryResult, type Session } from './database.js';

const parsers = {
  [types.TIMESTAMPTZ]: (v: string) => v,
  [types.TIMESTAMP]: (v: string) => v,
  [types.INT8]: (v: string) => (Number.isSafeInteger(Number(v)) ? Number(v) : v),
};

type PgliteQueryable = Pick<PGlite, 'query' | 'exec'>;

async function run<R>(q: PgliteQueryable, text: string, params?: readonly unknown[], blob?: Blob, opts?: QueryOptions): Promise<QueryResult<R>> {
  const textTypes = opts?.textTypes;
  const r = await q.query<R>(text, params as unknown[] | undefined, {
    ...(blob ? { blob } : {}),
    ...(opts?.rowMode ? { rowMode: opts.rowMode } : {}),
    ...(textTypes ? { parsers: Object.fromEntries(textTypes.map((oid) => [oid, (v: string) => v])) } : {}),
  });
  return {
    rows: r.rows,
    rowCount: r.affectedRows ?? r.rows.length,
    ...(opts?.rowMode ? { fields: r.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID })) } : {}),
  };
}

export class EmbeddedDatabase implements Database {
  readonly backend = 'embedded' as const;
  readonly description: string;
  private readonly locks = new Set<string>();

  private constructor(
    readonly pg: PGlite,
    readonly dataDir: string,
    private readonly release: () => void,
  ) {
    this.description = `embedded PostgreSQL in ${dataDir}`;
  }

  static async open(dataDir: string): Promise<EmbeddedDatabase> {
    const release = lockDataDir(dataDir);
    try {
      const pg = await PGlite.create(embeddedClusterPath(dataDir), { parsers });
      return new EmbeddedDatabase(pg, dataDir, release);
    } catch (err) {
      release();
      throw new Error(`cannot open the embedded database in ${dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  query<R>(text: string, params?: readonly unknown[], opts?: QueryOptions): Promise<QueryResult<R>> {
    return run<R>(this.pg, text, params, undefined, opts);
  }

  async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
    // Sessions share the one connection: temp tables are named per connector (see
    // stageTables), and a transaction (PGlite's) holds off every other query until it ends.
    return fn(new EmbeddedSession(this.pg, this.locks));
  }

  async close(): Promise<void> {
    try {
      await this.pg.close();
    } finally {
      this.release();
    }
  }
}

class EmbeddedSession implements Session {
  private current: PgliteQueryable;
  private readonly held = new Set<string>();

  constructor(
    private readonly pg: PGlite,
    private readonly locks: Set<string>,
  ) {
    this.current = pg;
  }

  query<R>(text: string, params?: readonly unknown[], opts?: QueryOptions): Promise<QueryResult<R>> {
    return run<R>(this.current, text, params, undefined, opts);
  }

  async exec(sql: string): Promise<void> {
    await this.current.exec(sql);
  }

  async copyText(table: string, columns: readonly string[], text: string | Uint8Array): Promise<void> {
    if (text.length === 0) return;
    await run(this.current, `COPY ${table} (${columns.join(', ')}) FROM '/dev/blob'`, [], new Blob([text]));
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.pg.transaction(async (tx) => {
      const outer = this.current;
      this.current = tx;
      try {
        return await fn();
      } finally {
        this.current = outer;
      }
    });
  }

  async tryLock(key: string): Promise<boolean> {
    if (this.locks.has(key)) return false;
    this.locks.add(key);
    this.held.add(key);
    return true;
  }

  async unlock(key: string): Promise<void> {
    if (this.held.delete(key)) this.locks.delete(key);
  }
}
