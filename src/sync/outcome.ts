// What a sync came to, and what that means to callers (exit codes, error kinds).
import { SyncAbortedError, TinesAuthError, TinesRequestError, type ErrorKind } from '../errors.js';
import type { RunCounts } from '../db/runs.js';

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
