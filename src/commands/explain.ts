// A failed command's error, said for the person who ran it: a refused
// connection names the setting to check, a data directory the process cannot
// write says whose it must be. Anything else is the error's own message.
import { statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Settings } from '../config.js';
import { errorMessage } from '../errors.js';

/** The error or the first of its causes (and AggregateError members) with an errno code. */
function systemError(err: unknown, seen = new Set<unknown>()): NodeJS.ErrnoException | undefined {
  if (!err || typeof err !== 'object' || seen.has(err)) return undefined;
  seen.add(err);
  const e = err as NodeJS.ErrnoException & { errors?: unknown[] };
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e;
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = systemError(inner, seen);
    if (found) return found;
  }
  return undefined;
}

/** host:port of a postgres:// URL, without its credentials. */
function serverOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return 'the server in DATABASE_URL';
  }
}

/** "/data belongs to uid 0", or of its nearest existing parent when it does not exist yet. */
function ownership(path: string): string {
  for (let p = path, missing = false; ; missing = true) {
    try {
      const uid = statSync(p).uid;
      return missing ? `${path} does not exist, and ${p}, where it would be created, belongs to uid ${uid}` : `${path} belongs to uid ${uid}`;
    } catch {
      const parent = dirname(p);
      if (parent === p) return `${path} does not exist`;
      p = parent;
    }
  }
}

/** The PostgreSQL error code (SQLSTATE) of a pg error, or of one of its causes. */
function sqlState(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as { code?: unknown; severity?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') return e.code;
  return sqlState(e.cause, depth + 1);
}

/** A DATA_DIR this process cannot write, or that is a file: a setting to fix, not a database to wait for. */
export function dataDirUnusable(err: unknown, config: Pick<Settings, 'database'>): boolean {
  const sys = systemError(err);
  if (!sys || config.database.url) return false;
  const dir = resolve(config.database.dataDir);
  const inDataDir = sys.path === undefined || sys.path.startsWith(dir) || dir.startsWith(sys.path);
  return inDataDir && ['EACCES', 'EPERM', 'EROFS', 'EEXIST', 'ENOTDIR'].includes(sys.code!);
}

export function explainFailure(err: unknown, config: Pick<Settings, 'database'> & Partial<Pick<Settings, 'healthPort'>>): string {
  const sys = systemError(err);
  const url = config.database.url;
  if (sys?.code === 'EADDRINUSE') {
    const port = (sys as { port?: number }).port;
    const setting =
      port !== undefined && port === config.healthPort
        ? 'HEALTH_PORT'
        : port !== undefined && port === config.database.embeddedPgPort
          ? 'EMBEDDED_PG_PORT'
          : undefined;
    return setting
      ? `${setting} ${port} is already in use by another process: stop that process, or set ${setting} to a free port`
      : `port ${port ?? '?'} is already in use by another process (check HEALTH_PORT): ${errorMessage(err)}`;
  }
  if (url) {
    const state = sqlState(err);
    const server = serverOf(url);
    if (state === '3D000') return `${errorMessage(err)} on ${server}: check the database name in DATABASE_URL (the path after the host)`;
    if (state === '28000' || state === '28P01') return `${errorMessage(err)} on ${server}: check the user and password in DATABASE_URL`;
    if (/connection timeout|timeout expired/i.test(errorMessage(err))) {
      return `PostgreSQL at ${server} did not answer in time (the connection was accepted, then nothing): check DATABASE_URL (is it PostgreSQL that listens on that port?), and that the server is not overloaded`;
    }
  }
  if (
    sys &&
    !url &&
    (sys.code === 'EEXIST' || sys.code === 'ENOTDIR') &&
    (sys.path === undefined || sys.path.startsWith(resolve(config.database.dataDir)) || sys.path.startsWith(config.database.dataDir))
  ) {
    return `DATA_DIR ${config.database.dataDir} is not a directory (${sys.path ?? config.database.dataDir} is a file): point DATA_DIR at a directory (it is created if missing)`;
  }
  if (sys && url && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(sys.code!)) {
    const why = sys.code === 'ECONNREFUSED' ? 'connection refused' : sys.code === 'ENOTFOUND' || sys.code === 'EAI_AGAIN' ? 'host not found' : 'no answer';
    return `cannot reach PostgreSQL at ${serverOf(url)} (${why}): check DATABASE_URL, and that the server runs and accepts connections from here`;
  }
  const dir = config.database.dataDir;
  const inDataDir = (path: string | undefined) => path === undefined || path.startsWith(dir) || dir.startsWith(path);
  if (sys && ['EACCES', 'EPERM', 'EROFS'].includes(sys.code!) && !url && inDataDir(sys.path)) {
    const me = userInfo();
    return (
      `DATA_DIR ${dir} cannot be written by this process (uid ${me.uid}${me.username ? `, ${me.username}` : ''}; ${sys.code} on ${sys.path ?? dir}). ` +
      `${ownership(dir)}: it must belong to uid ${me.uid} (or be writable by it). ` +
      `In the container image the process runs as node (uid 1000): \`chown -R 1000:1000\` the volume or directory mounted at ${dir}.`
    );
  }
  return errorMessage(err);
}
