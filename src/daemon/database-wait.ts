// `run` before its database answers: the attempt (open, migrate, register) is
// retried with jittered backoff until it succeeds or the process is stopped, so
// a container that starts before its PostgreSQL waits for it instead of exiting.
import { errorMessage, SyncAbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../tines/retry.js';

/** The first wait after a failed attempt; it doubles per attempt up to START_RETRY_CAP_MS. */
export const START_RETRY_BASE_MS = 1_000;
export const START_RETRY_CAP_MS = 30_000;

/** The wait after failed attempt `n` (1-based): half fixed, half jittered, of min(cap, base * 2^(n-1)). */
export function startRetryDelayMs(n: number, random: () => number = Math.random): number {
  const ceiling = Math.min(START_RETRY_CAP_MS, START_RETRY_BASE_MS * 2 ** (n - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface DatabaseWaitOptions {
  /** Aborted by SIGTERM/SIGINT: the wait ends at once. */
  signal: AbortSignal;
  log: Logger;
  /** Told why the database is not ready yet, after each failed attempt (the health server's /readyz says it). */
  onWaiting?: (reason: string) => void;
  /** The failure said for a person (the setting to check); default: its message. */
  explain?: (err: unknown) => string;
  /** A failure waiting cannot mend (a DATA_DIR this process can never write): thrown at once instead of retried. */
  permanent?: (err: unknown) => boolean;
}

/**
 * Runs `attempt` until it succeeds, waiting with backoff between failures, each
 * logged. Resolves with its result, or undefined when `signal` stops the wait;
 * an attempt still in progress then runs to its end (bounded by the database
 * client's connection timeout) and what it opened is handed to `release`.
 */
export async function untilDatabaseReady<T>(
  attempt: () => Promise<T>,
  release: (opened: T) => Promise<void>,
  opts: DatabaseWaitOptions,
): Promise<T | undefined> {
  const { signal, log } = opts;
  const stopped = new Promise<'stopped'>((resolve) => {
    if (signal.aborted) resolve('stopped');
    else signal.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  for (let n = 1; ; n++) {
    if (signal.aborted) return undefined;
    const pending = attempt();
    const settled = pending.then(
      (value) => ({ value }),
      (err: unknown) => ({ err }),
    );
    const first = await Promise.race([settled, stopped]);
    if (first === 'stopped') {
      void pending.then(release, () => undefined).catch(() => undefined);
      return undefined;
    }
    if ('value' in first) {
      if (n > 1) log.info({ attempts: n }, 'database ready');
      return first.value;
    }
    if (opts.permanent?.(first.err)) throw first.err;
    const delayMs = startRetryDelayMs(n);
    const reason = opts.explain ? opts.explain(first.err) : errorMessage(first.err);
    opts.onWaiting?.(`waiting for the database (attempt ${n} failed: ${reason}; next in ${Math.ceil(delayMs / 1000)} s)`);
    log.warn({ attempt: n, retryInMs: delayMs, err: { message: reason } }, `database not ready: ${reason}; retrying with backoff`);
    try {
      await sleep(delayMs, signal);
    } catch (err) {
      if (err instanceof SyncAbortedError) return undefined;
      throw err;
    }
  }
}
