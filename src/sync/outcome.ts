// What a sync came to, and what that means to callers (exit codes, error kinds).
import { ConnectorDeletedError, SyncAbortedError, TinesAuthError, TinesRequestError, type ErrorKind } from '../errors.js';
import { ZERO_COUNTS, type RunCounts } from '../db/runs.js';

/** `skipped`: a queued sync found its connector synced since it was due (a fleet's catch-up), and did nothing. */
export type SyncResult = 'succeeded' | 'held' | 'failed' | 'aborted' | 'busy' | 'reconnect_required' | 'skipped';

export interface SyncOutcome {
  result: SyncResult;
  runId: number | null;
  counts: RunCounts;
  pagesFetched: number;
  pagesTotal: number | null;
  durationMs: number;
  errorKind?: ErrorKind;
  message?: string;
}

/** A sync that did not start a run: another is running, the key waits for a reconnect, or it was not needed. */
export function notStarted(result: 'busy' | 'reconnect_required' | 'skipped', message: string, durationMs: number): SyncOutcome {
  return { result, runId: null, counts: ZERO_COUNTS, pagesFetched: 0, pagesTotal: null, durationMs, message };
}

/** Exit codes of `sync`, per the contract. */
export function exitCodeFor(outcome: SyncOutcome): number {
  switch (outcome.result) {
    case 'succeeded':
    case 'skipped':
      return 0;
    case 'held':
      return 4;
    case 'busy':
      return 5;
    case 'reconnect_required':
      return 3;
    default:
      return outcome.errorKind === 'auth' ? 3 : 1;
  }
}

export function errorKindOf(err: unknown): ErrorKind {
  if (err instanceof TinesAuthError) return 'auth';
  if (err instanceof TinesRequestError) return err.kind;
  if (err instanceof SyncAbortedError) return 'shutdown';
  if (err instanceof ConnectorDeletedError || isDatabaseError(err)) return 'database';
  return 'internal';
}

/** A SQLSTATE (both backends' errors carry one). */
const SQLSTATE = /^[0-9A-Z]{5}$/;
/** A socket error: the Tines client classifies its own, so one that reaches here is the database's connection. */
const SOCKET_ERROR = /^E[A-Z]+$/;
/** What pg's pool and client throw when the connection is lost or never made (they carry no code). */
const CONNECTION_LOST = /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed)/;

/** An error from the database or the connection to it, as opposed to a bug in the connector. */
export function isDatabaseError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (SQLSTATE.test(code) || SOCKET_ERROR.test(code))) return true;
    if (CONNECTION_LOST.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some(isDatabaseError)) return true;
  }
  return false;
}
