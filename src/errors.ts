// Errors that callers branch on. Everything else is a plain Error with a cause.
import type { ConnectorSource } from './connectors/target.js';

/** The `error_kind` values of `sync_runs`. */
export type ErrorKind =
  | 'auth'
  | 'rate_limited'
  | 'network'
  | 'server'
  | 'invalid_response'
  | 'inconsistent_listing'
  | 'removal_guard'
  | 'database'
  | 'shutdown'
  /** Anything the connector did not foresee (a TypeError, a broken invariant): a bug, not the database. */
  | 'internal';

/** Tines refused the key: 401 (invalid or revoked) or 403 (no Tenant-owner rights). */
export class TinesAuthError extends Error {
  readonly kind = 'auth' as const;
  constructor(
    readonly status: 401 | 403,
    readonly path: string,
  ) {
    super(
      status === 401
        ? `Tines answered 401 to GET ${path}: the API key is invalid, expired or revoked (or its owner left the tenant). ` +
            'Create a new Tenant-owner API key in Tines, update TINES_API_KEY or TINES_API_KEY_FILE, then run `tines-connector reconnect`.'
        : `Tines answered 403 to GET ${path}: the API key has no Tenant-owner rights (admin/* needs them). ` +
            'Create the key as a Tenant owner, update TINES_API_KEY or TINES_API_KEY_FILE, then run `tines-connector reconnect`.',
    );
    this.name = 'TinesAuthError';
  }
}

/** A request that failed after its retries, or that is not worth retrying. */
export class TinesRequestError extends Error {
  constructor(
    readonly kind: 'rate_limited' | 'network' | 'server' | 'invalid_response',
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TinesRequestError';
  }
}

/** Internal signal of the retry loop: this attempt failed but another may succeed. */
export class RetryableError extends TinesRequestError {
  constructor(
    kind: 'rate_limited' | 'network' | 'server',
    message: string,
    status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(kind, message, status, options);
    this.name = 'RetryableError';
  }
}

/** The sync was stopped by shutdown (SIGTERM/SIGINT) or another abort. */
export class SyncAbortedError extends Error {
  readonly kind = 'shutdown' as const;
  constructor(message = 'sync aborted by shutdown') {
    super(message);
    this.name = 'SyncAbortedError';
  }
}

/**
 * The connector's row, registered earlier by this process, is gone: `delete --yes`
 * removed it meanwhile. A daemon does not register it again; it stops syncing it.
 * (`during: 'sync'`: it went while a sync ran, which then applies nothing.)
 */
export class ConnectorDeletedError extends Error {
  constructor(
    readonly connectorName: string,
    readonly connectorId: number,
    /** `sync`: it went while a sync ran; otherwise which kind of connector it was. */
    when: 'sync' | ConnectorSource = 'env',
  ) {
    super(
      when === 'sync'
        ? `connector "${connectorName}" (id ${connectorId}) was deleted during its sync; nothing was applied`
        : when === 'registry'
          ? `connector "${connectorName}" (id ${connectorId}) was removed from the registry while this process served it; it is no longer synced`
          : `connector "${connectorName}" (id ${connectorId}) was deleted while this process served it; ` +
            'it is not registered again until the process is restarted with it configured',
    );
    this.name = 'ConnectorDeletedError';
  }
}

/** The embedded database's directory is held by another process. */
export class DataDirBusyError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `the embedded database in ${dataDir} is in use by another tines-connector process (pid ${pid}). ` +
        'Only one process can open it at a time. Stop that process first (`sync`, `query`, `status` and `report` ' +
        'reach a running daemon by themselves), or point every process at a PostgreSQL server with DATABASE_URL. ' +
        `If you are sure no tines-connector process uses it (on this host, or another sharing the volume), delete the lock file ${dataDir}/tines-connector.pid and try again`,
    );
    this.name = 'DataDirBusyError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Bad input for a connector (name, domain, schedule, key): each field with what is wrong. */
export class ConnectorInputError extends Error {
  constructor(readonly fields: Readonly<Record<string, string>>) {
    super(
      `invalid connector: ${Object.entries(fields)
        .map(([f, m]) => `${f} ${m}`)
        .join('; ')}`,
    );
    this.name = 'ConnectorInputError';
  }
}

/** A connector of that name already exists. */
export class ConnectorNameTakenError extends Error {
  constructor(
    readonly connectorName: string,
    why = 'already exists',
  ) {
    super(`a connector named "${connectorName}" ${why}`);
    this.name = 'ConnectorNameTakenError';
  }
}

/** No connector of that name (or it was removed meanwhile). */
export class ConnectorNotFoundError extends Error {
  constructor(
    readonly connectorName: string,
    what = 'connector',
  ) {
    super(`no ${what} named "${connectorName}"`);
    this.name = 'ConnectorNotFoundError';
  }
}

/**
 * A command that stops on a bad use or bad input (`query ""`, `--format xml`):
 * printed once like any failure, and the process exits with `exitCode` (2).
 */
export class CommandRefusal extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
    this.name = 'CommandRefusal';
  }
}
