// What a sync came to, and what that means to callers (exit codes, error kinds).
import { SyncAbortedError, TinesAuthError, TinesRequestError, type ErrorKind } from '../errors.js';
import { ZERO_COUNTS, type RunCounts } from '../db/runs.js';

export type SyncResult = 'succeeded' | 'held' | 'failed' | 'aborted' | 'busy' | 'reconnect_required';

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

/** A sync that did not start a run: another is running, or the key waits for a reconnect. */
export function notStarted(result: 'busy' | 'reconnect_required', message: string, durationMs: number): SyncOutcome {
  return { result, runId: null, counts: ZERO_COUNTS, pagesFetched: 0, pagesTotal: null, durationMs, message };
}

/** Exit codes of `sync`, per the contract. */
export function exitCodeFor(outcome: SyncOutcome): number {
  switch (outcome.result) {
    case 'succeeded':
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
  return 'database';
}
