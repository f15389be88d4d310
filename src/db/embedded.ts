// The embedded backend: PGlite (PostgreSQL in WebAssembly) in DATA_DIR, one
// process at a time, guarded by a pid lock file so a second process gets a
// clear error instead of a corrupted directory.
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { DataDirBusyError } from '../errors.js';
import { embeddedClusterPath, type Database, type QueryOptions, type QueryResult, type Session } from './database.js';

export { DataDirBusyError };

const LOCK_FILE = 'tines-connector.pid';

/** Data directories this process has open: its own pid in a lock file is only stale when the dir is not among them. */
const openHere = new Set<string>();

/** Whether the process that wrote the lock file (`pid`, with its `identity` when recorded) still runs. */
function isAlive(pid: number, dataDir: string, identity: string | undefined): boolean {
  // Our own pid: either we hold it, or the file is left from an earlier life with the same pid (pid 1 in a container).
  if (pid === process.pid) return openHere.has(dataDir);
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A live pid whose identity differs is another process that got the number later
  // (after a crash and a reboot, or pid reuse): the holder is gone.
  const now = identity === undefined ? undefined : processIdentity(pid);
  return now === undefined || now === identity;
}

/**
 * Who process `pid` is, beyond its number: the boot it runs in and its start time
 * in clock ticks since that boot, from /proc (Linux); undefined elsewhere. No wall
 * clock is involved, so a clock step cannot make a live holder look gone.
 */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) " start at field 3; starttime is field 22.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return startTicks && /^\d+$/.test(startTicks) && boot ? `${boot}:${startTicks}` : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the data directory's pid lock; returns its release function. */
export function lockDataDir(dir: string): () => void {
  const dataDir = resolve(dir);
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // Written aside, then linked into place: the lock file never exists without its pid.
      const mine = `${path}.${process.pid}`;
      // The pid, then who that process is (see processIdentity), when the platform tells.
      writeFileSync(mine, `${process.pid}\n${processIdentity(process.pid) ?? ''}\n`);
      try {
        linkSync(mine, path);
      } finally {
        rmSync(mine, { force: true });
      }
      openHere.add(dataDir);
      return () => {
        openHere.delete(dataDir);
        rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const { pid, identity, text } = readLock(path);
      if (pid !== undefined && isAlive(pid, dataDir, identity)) throw new DataDirBusyError(dataDir, pid);
      removeStaleLock(dataDir, path, pid, text);
    }
  }
  throw new Error(`cannot take the lock file ${path}`);
}

/** The lock file's pid and, when recorded, its holder's identity (files of earlier versions hold the pid only). */
function readLock(path: string): { pid?: number; identity?: string; text?: string } {
  try {
    const text = readFileSync(path, 'utf8');
    const [first, second] = text.split('\n');
    const pid = Number.parseInt(first ?? '', 10);
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, identity: second?.trim() || undefined, text };
  } catch {
    return {}; // gone meanwhile
  }
}

/**
 * Removes a lock file whose process is gone. Only one process at a time may do
 * it (a second lock file, created exclusively), and only if the file still holds
 * what was judged stale, so two processes that found it stale cannot remove each
 * other's fresh lock.
 */
function removeStaleLock(dataDir: string, path: string, stalePid: number | undefined, staleText: string | undefined): void {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking over; a guard left by a crash is cleared after a while.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) rmSync(guard, { force: true });
    } catch {
      // gone meanwhile
    }
    throw new DataDirBusyError(dataDir, stalePid ?? 0);
  }
  try {
    closeSync(fd);
    // The whole file, not just the pid: a new holder may have the same pid (pid 1 in a restarted container).
    if (readLock(path).text === staleText) rmSync(path, { force: true });
  } finally {
    rmSync(guard, { force: true });
  }
}

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
  return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length, ...(opts?.rowMode ? { fields: r.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID })) } : {}) };
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
    // Sessions share the one connection; temp tables are named per purpose and
    // sessions do not interleave transactions, because the sync is single flight.
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

