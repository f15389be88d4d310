// Who runs a due sync, in a fleet: each process takes jobs from the shared
// queue while fewer than SYNC_CONCURRENCY of its syncs run, and fetches again at
// once when one ends (pg-boss's own work() loop takes at most one job per poll:
// measured too slow for a thousand connectors a minute, docs/queue-choice.md).
// Each job ends completed or handed back to the queue; a job whose end could
// not be written stays active until it expires and comes round again, when
// the catch-up check (a run since it was due) makes it a no-op.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { QueuedJob, SyncQueue } from './sync-queue.js';

/** What became of a job: done (whatever the sync's outcome), or back to the queue for a process to take later. */
export type JobResult = 'complete' | { handBack: string };

const IDLE_POLL_MS = 1_000;

export class Dispatcher {
  private readonly running = new Map<string, Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A poke that came while the loop was not waiting: its next wait returns at once. */
  private poked = false;
  private fetchErrors = 0;

  constructor(
    private readonly queue: Pick<SyncQueue, 'fetch' | 'complete' | 'handBack'>,
    readonly concurrency: number,
    private readonly runJob: (job: QueuedJob) => Promise<JobResult>,
    private readonly log: Logger,
  ) {}

  /** Syncs of queued jobs running in this process. */
  get busy(): number {
    return this.running.size;
  }

  start(): void {
    this.loop ??= this.fetchLoop();
  }

  private async fetchLoop(): Promise<void> {
    while (!this.stopping) {
      const free = this.concurrency - this.running.size;
      if (free <= 0) {
        await this.idle(60_000);
        continue;
      }
      let jobs: QueuedJob[] = [];
      try {
        // One at a time, oldest first: a batch comes back in no order, and a connector's
        // start job must not lose its turn to the same connector's slot job fetched with it.
        jobs = await this.queue.fetch(1);
        this.fetchErrors = 0;
      } catch (err) {
        if (this.fetchErrors++ % 30 === 0) this.log.warn({ err: { message: errorMessage(err) } }, 'cannot take jobs from the sync queue; trying again');
      }
      if (this.stopping) {
        // Taken while stopping: back at once, untouched.
        if (jobs.length > 0)
          await this.queue
            .handBack(
              jobs.map((j) => j.id),
              'the process is stopping',
            )
            .catch(() => undefined);
        break;
      }
      for (const job of jobs) this.launch(job);
      if (jobs.length === 0) await this.idle(IDLE_POLL_MS);
    }
  }

  private idle(ms: number): Promise<void> {
    if (this.poked) {
      this.poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private launch(job: QueuedJob): void {
    if (this.running.has(job.id)) {
      // Its sync runs here still, past the job's expiry: it comes round again until that sync ends.
      void this.queue.handBack(job.id, 'its sync is still running in this process').catch(() => undefined);
      return;
    }
    const done = (async () => {
      let result: JobResult;
      try {
        result = await this.runJob(job);
      } catch (err) {
        // The job's own errors are the sync's; one that escapes is a bug: logged, and the next slot tries again.
        this.log.error({ err: { message: errorMessage(err) }, job: job.id, connectorId: job.data.connectorId }, 'sync job failed unexpectedly');
        result = 'complete';
      }
      try {
        if (result === 'complete') await this.queue.complete(job.id);
        else await this.queue.handBack(job.id, result.handBack);
      } catch (err) {
        this.log.warn(
          { err: { message: errorMessage(err) }, job: job.id, connectorId: job.data.connectorId },
          'cannot record the end of a sync job; it comes round again when it expires',
        );
      }
    })().finally(() => {
      this.running.delete(job.id);
      this.poke();
    });
    this.running.set(job.id, done);
  }

  /** Fetches now instead of at the next poll (jobs were just queued). */
  poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake) wake();
    else this.poked = true;
  }

  /** Stops taking jobs; the caller aborts the syncs in flight. */
  stopFetching(): void {
    this.stopping = true;
    this.poke();
  }

  /** Waits for the fetch loop and the jobs in flight (their syncs aborted by the caller), at most `ms`. True when all ended. */
  async drain(ms: number): Promise<boolean> {
    this.stopFetching();
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all([this.loop, ...this.running.values()]).then(() => true);
    const ended = await Promise.race([all, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
    clearTimeout(timer);
    return ended;
  }
}
