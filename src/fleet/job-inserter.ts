// The clock's side of the queue: due syncs handed in one at a time (each
// connector's cron fires on its own) go to the queue together, one insert per
// burst. An insert that fails (the database is away) is retried until it goes
// through, keeping only each connector's latest job, so after an outage each
// connector catches up with one sync, not one per missed slot.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { NewJob, SyncQueue } from './sync-queue.js';

/** How long due jobs gather before one insert (the crons of one slot fire within a few ms of each other). */
const GATHER_MS = 25;
const RETRY_MS = 5_000;

/** Each connector's job that starts last. */
function latestPerConnector(jobs: readonly NewJob[]): NewJob[] {
  const latest = new Map<number, NewJob>();
  for (const j of jobs) {
    const seen = latest.get(j.data.connectorId);
    if (!seen || j.startAfter >= seen.startAfter) latest.set(j.data.connectorId, j);
  }
  return [...latest.values()];
}

export class JobInserter {
  /** Jobs not yet in the queue. */
  private pending: NewJob[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inserting: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly queue: Pick<SyncQueue, 'insert'>,
    private readonly log: Logger,
    /** Called after each insert that went through (the dispatcher looks for due jobs at once). */
    private readonly inserted: () => void = () => undefined,
  ) {}

  /** Queues a job (while inserts fail, it replaces the connector's job waiting before it). */
  add(job: NewJob): void {
    if (this.stopped) return;
    this.pending.push(job);
    if (this.failures > 0) this.pending = latestPerConnector(this.pending);
    this.schedule(GATHER_MS);
  }

  /** Jobs waiting for an insert that went through. */
  get waiting(): number {
    return this.pending.length;
  }

  private schedule(ms: number): void {
    if (this.timer || this.inserting) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inserting = this.flush().finally(() => {
        this.inserting = undefined;
        if (this.pending.length > 0 && !this.stopped) this.schedule(this.failures > 0 ? RETRY_MS : GATHER_MS);
      });
    }, ms);
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      await this.queue.insert(batch);
      this.inserted();
      if (this.failures > 0) this.log.info({ jobs: batch.length, failedAttempts: this.failures }, 'due syncs queued after the database came back');
      this.failures = 0;
    } catch (err) {
      this.pending = latestPerConnector([...batch, ...this.pending]);
      if (this.failures++ === 0 || this.failures % 12 === 0) {
        this.log.warn({ err: { message: errorMessage(err) }, jobs: batch.length, failedAttempts: this.failures }, 'cannot queue due syncs; retrying every 5 s');
      }
    }
  }

  /** Stops taking jobs and gives the insert in flight (if any) a moment; what is still pending is dropped (the other replicas queue the same slots). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inserting;
  }
}
