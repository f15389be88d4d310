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

const QUEUE_STOP_MS = 3_000;

export interface FleetOptions {
  url: string;
  /** SYNC_CONCURRENCY: jobs this process runs at once. */
  concurrency: number;
  stallSeconds: number;
  log: Logger;
  runJob: (job: QueuedJob) => Promise<JobResult>;
}

export class Fleet {
  /** Replaced after a failed start: a pg-boss instance whose start() failed never starts again (its maintenance would never run). */
  private queue: SyncQueue;
  private readonly inserter: JobInserter;
  readonly dispatcher: Dispatcher;
  private opened = false;
  private stopped = false;
  private opening: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(opts: FleetOptions) {
    const log = opts.log.child({ component: 'fleet' });
    this.log = log;
    const newQueue = () => new SyncQueue(opts.url, opts.stallSeconds, log);
    this.newQueue = newQueue;
    this.queue = newQueue();
    const queue = {
      insert: (jobs: readonly NewJob[]) => this.queue.insert(jobs),
      fetch: (n: number) => this.queue.fetch(n),
      complete: (id: string) => this.queue.complete(id),
      handBack: (ids: string | string[], why: string) => this.queue.handBack(ids, why),
    };
    this.dispatcher = new Dispatcher(queue, opts.concurrency, opts.runJob, log);
    this.inserter = new JobInserter(queue, log, () => this.dispatcher.poke());
  }
  private readonly newQueue: () => SyncQueue;

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
          const failed = this.queue;
          this.queue = this.newQueue();
          await failed.stop().catch(() => undefined);
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

  /** No more jobs taken or queued (an insert in flight is left to end by itself); the caller aborts the syncs in flight. */
  stopTaking(): void {
    this.dispatcher.stopFetching();
    void this.inserter.stop();
  }

  /**
   * After the caller aborted the syncs in flight: waits for their jobs to be
   * completed or handed back (at most `graceMs`), then closes the queue.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopTaking();
    const drained = await this.dispatcher.drain(graceMs);
    this.stopped = true;
    // pg-boss's stop waits for its pool's connections: bounded, so a database that stopped answering cannot hold the exit.
    let timer: NodeJS.Timeout | undefined;
    if (this.opened) await Promise.race([this.queue.stop().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, QUEUE_STOP_MS)))]);
    clearTimeout(timer);
    return drained;
  }
}
