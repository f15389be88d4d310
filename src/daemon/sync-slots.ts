// Who runs a due sync, in this process: at most SYNC_CONCURRENCY at once, the
// rest wait their turn in order. A hung tenant holds one slot, never the others'.
// (The fleet replaces this with a job queue shared by every process; the
// schedule that says when a sync is due stays as it is.)
import { SyncAbortedError } from '../errors.js';

export class SyncSlots {
  private inUse = 0;
  private readonly waiting: { grant: () => void }[] = [];

  constructor(readonly size: number) {}

  /** Syncs running now. */
  get busy(): number {
    return this.inUse;
  }

  /** Syncs waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs fn in a slot, after waiting for one; a signal that aborts while it waits rejects with SyncAbortedError. */
  async run<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new SyncAbortedError());
    if (this.inUse < this.size) {
      this.inUse++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.inUse++;
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new SyncAbortedError('sync aborted while it waited for a free slot'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private release(): void {
    this.inUse--;
    this.waiting.shift()?.grant();
  }
}
