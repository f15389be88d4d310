// This process's part in a fleet of `run` processes on one PostgreSQL: the
// queue (sync-queue.ts), the clock's inserts (job-inserter.ts) and the
// dispatcher that runs jobs here (dispatcher.ts), started and stopped
// together. The Supervisor decides what a job means (which connector's daemon
// runs it); this module only moves jobs.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { Dispatcher, type JobResult } from './dispatcher.js';
import { JobInserter } from './job-inserter.js';
import { SyncQueue, type NewJob, type QueuedJob } from './sync-queue.js';

export interface FleetOptions {
  url: string;
  /** SYNC_CONCURRENCY: jobs this process runs at once. */
  concurrency: number;
  stallSeconds: number;
  log: Logger;
  runJob: (job: QueuedJob) => Promise<JobResult>;
}

export class Fleet {
  private readonly queue: SyncQueue;
  private readonly inserter: JobInserter;
  readonly dispatcher: Dispatcher;
  private opened = false;
  private stopped = false;
  private opening: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(opts: FleetOptions) {
    const log = opts.log.child({ component: 'fleet' });
    this.log = log;
    this.queue = new SyncQueue(opts.url, opts.stallSeconds, log);
    this.dispatcher = new Dispatcher(this.queue, opts.concurrency, opts.runJob, log);
    this.inserter = new JobInserter(this.queue, log, () => this.dispatcher.poke());
  }

  /** Queues a due sync (inserted with the others due at the same moment; retried while the database is away). */
  add(job: NewJob): void {
    this.inserter.add(job);
  }

  /**
   * Opens the queue (its schema is installed by `migrate`), trying again every
   * few seconds while the database does not answer; jobs added meanwhile wait
   * in the inserter.
   */
  start(): void {
    this.opening ??= (async () => {
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await this.queue.start();
          this.opened = true;
          if (this.stopped) await this.queue.stop().catch(() => undefined);
          return;
        } catch (err) {
          if (attempt === 1 || attempt % 12 === 0) this.log.warn({ err: { message: errorMessage(err) }, attempt }, 'cannot open the sync queue; trying again');
          await new Promise((resolve) => setTimeout(resolve, 5_000));
        }
      }
    })();
  }

  /** Starts taking jobs: call once this process serves the connectors they name. */
  takeJobs(): void {
    this.dispatcher.start();
  }

  /** Jobs due in the whole fleet and not yet taken. */
  dueDepth(): Promise<number> {
    return this.queue.dueDepth();
  }

  /** No more jobs taken or queued; the caller aborts the syncs in flight. */
  stopTaking(): Promise<void> {
    this.dispatcher.stopFetching();
    return this.inserter.stop();
  }

  /**
   * After the caller aborted the syncs in flight: waits for their jobs to be
   * completed or handed back (at most `graceMs`), then closes the queue.
   */
  async stop(graceMs: number): Promise<boolean> {
    await this.stopTaking();
    const drained = await this.dispatcher.drain(graceMs);
    this.stopped = true;
    if (this.opened) await this.queue.stop().catch(() => undefined);
    return drained;
  }
}
