// The one small interface both backends serve: the PostgreSQL server (pg) and
// the embedded PostgreSQL (PGlite). The sync logic is written once against it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Where the embedded PostgreSQL keeps its cluster inside DATA_DIR. */
export function embeddedClusterPath(dataDir: string): string {
  return join(dataDir, 'pgdata');
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
  /** The result's columns in order (with `rowMode: 'array'`). */
  fields?: ResultField[];
}

/** One column of a result: its name and its PostgreSQL type oid. */
export interface ResultField {
  name: string;
  typeId: number;
}

export interface QueryOptions {
  /**
   * Prepare the statement once per connection under this name and reuse its
   * plan (for statements run once per page). Backends without prepared
   * statements ignore it.
   */
  name?: string;
  /** Rows as arrays, every column kept (two of the same name too), with the result's fields. */
  rowMode?: 'array';
  /** Type oids whose values come back as PostgreSQL's text, unparsed (dates, timestamps, bytea for `query`). */
  textTypes?: readonly number[];
}

export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], opts?: QueryOptions): Promise<QueryResult<R>>;
}

/**
 * One connection held for a while: temp tables, a session lock and a
 * transaction live on it. What each backend keeps of that:
 *
 * | | server (pg) | embedded (PGlite) |
 * |---|---|---|
 * | connection | its own, from the pool | the one connection of the process, shared by every session |
 * | temp tables | private to the session | shared by every session of the process: two sessions using the same temp table names at once see each other's rows |
 * | `tryLock` | a session advisory lock, across every process on the database | a name in this process' memory; the data-dir lock (data-dir-lock.ts) makes this process the only one |
 * | `transaction` | its own; other sessions run alongside it | excludes every other query of the process until it ends |
 * | `query` `name` | a prepared statement per connection | ignored |
 *
 * So on the embedded backend a session's temp tables are its own only while no
 * other session uses the same names: each sync's staging tables are named after
 * its connector (stageTables), whose syncs run one at a time (its sync lock), so
 * syncs of different connectors stage at once; a sync's final transaction
 * excludes every other sync's statements until it ends.
 */
export interface Session extends Queryable {
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Bulk-loads rows already encoded in COPY text format (tab-separated, \N for null, one per line). */
  copyText(table: string, columns: readonly string[], text: string | Uint8Array): Promise<void>;
  /** Runs fn inside BEGIN … COMMIT on this session; rolls back if it throws. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Non-blocking lock: false when someone else holds it (any process on the server; this process when embedded, see above). */
  tryLock(key: string): Promise<boolean>;
  unlock(key: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly backend: 'postgres' | 'embedded';
  /** Where the data lives, safe to print (no password). */
  readonly description: string;
  withSession<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Encodes one value for COPY … FROM in text format. */
export function copyValue(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  else if (typeof v === 'boolean') return v ? 't' : 'f';
  else if (Array.isArray(v)) s = pgTextArray(v as unknown[]);
  else s = JSON.stringify(v);
  return escapeCopy(s);
}

const COPY_SPECIAL = /[\\\t\n\r\0]/;
/** Escapes for COPY text format; NUL, which PostgreSQL text cannot hold, is dropped. */
export function escapeCopy(s: string): string {
  if (!COPY_SPECIAL.test(s)) return s;
  return s.replace(/[\\\t\n\r\0]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : ''));
}

/**
 * COPY text built straight into UTF-8 bytes, line by line. Cheaper than one
 * long string concatenated and encoded at the end (measured: less than half
 * the time for 67 MB of user rows, and no large string for the collector).
 */
export class CopyBuffer {
  private buf: Buffer;
  private used = 0;

  constructor(initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Appends one line; `line` must end with a newline. */
  push(line: string): void {
    this.ensureRoom(line.length * 3); // the most UTF-8 bytes one UTF-16 unit can need
    this.used += this.buf.write(line, this.used, 'utf8');
  }

  /** Appends bytes already encoded (lines of another CopyBuffer). */
  pushBytes(bytes: Uint8Array): void {
    this.ensureRoom(bytes.length);
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private ensureRoom(bytes: number): void {
    if (this.used + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + bytes));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }

  get byteLength(): number {
    return this.used;
  }

  /** Empties the buffer for reuse (its memory is kept). */
  reset(): void {
    this.used = 0;
  }

  /** The bytes written so far (a view; the buffer is not reused). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.used);
  }
}

/** A text[] literal: {"a","b"} with quotes and backslashes escaped. */
export function pgTextArray(items: readonly unknown[]): string {
  return `{${items.map((i) => (i === null || i === undefined ? 'NULL' : `"${String(i).replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
}

/** A stable 64-bit advisory lock key from a string (first 8 bytes of its SHA-256). */
export function lockKeyOf(key: string): string {
  return createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}
