// One run of a sync, once the entry (run-sync.ts) holds the lock and the run
// row exists: the listing into staging, the removal rules, and the transaction
// that applies the diff; or the record of its failure.
import type { Settings } from '../config.js';
import type { ConnectorTarget } from '../connectors/target.js';
import { recordBaseline, recordKeyAccepted, recordKeyRefused, recordSyncFailure, recordSyncSuccess, type ConnectorRow } from '../db/connectors.js';
import type { Database, Session } from '../db/database.js';
import { finishRun, updateConfirmationProgress, updateRunProgress, ZERO_COUNTS, type RunCounts, type RunTrigger } from '../db/runs.js';
import { ConnectorDeletedError, errorMessage, SyncAbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TinesClient, TinesClientOptions, UsersPage } from '../tines/client.js';
import { perPageOf, type PageMeta } from '../tines/schema.js';
import { confirmRemovals, type ConfirmResult } from './confirm.js';
import { guardHold, heldReason, type Candidates, type Held, type ListingFacts } from './removal-rules.js';
import { applyDiff, COUNT_CANDIDATES, type DiffCounts } from './diff.js';
import { errorKindOf, type SyncOutcome } from './outcome.js';
import { ProgressReporter } from './progress.js';
import { refreshStatistics } from './statistics.js';
import { RememberedListing } from './remembered-listing.js';
import { createStaging, finalizeStaging, hasNoUsers, markSyncWriter, preparePage, stagePage, stageTables } from './staging.js';

/** Everything one run needs, handed over by the entry once the lock is held and the run row exists. */
export interface RunContext {
  config: Settings;
  db: Database;
  hooks?: Pick<TinesClientOptions, 'onResponse' | 'onRetry'>;
  target: ConnectorTarget;
  /** The session holding the sync's lock; staging and the run's transaction live on it. */
  session: Session;
  connector: ConnectorRow;
  runId: number;
  apiKey: string;
  fingerprint: string;
  request: { trigger: RunTrigger; allowMassRemoval?: boolean; signal?: AbortSignal };
  log: Logger;
  /** performance.now() when the sync began (the outcome's duration counts from there). */
  started: number;
}

// The Tines client and axios are the heaviest modules a sync loads: they load
// while the process connects to the database and takes its lock, not before.
const tinesClient = import('../tines/client.js');
tinesClient.catch(() => undefined); // a failure surfaces where it is awaited

const NO_CHANGES: DiffCounts = {
  usersAdded: 0,
  usersUpdated: 0,
  usersRestored: 0,
  usersTouched: 0,
  usersRemoved: 0,
  membershipsAdded: 0,
  membershipsUpdated: 0,
  membershipsRemoved: 0,
};

export class SyncRun {
  private pagesFetched = 0;
  private pagesTotal: number | null = null;
  /** Users listed so far (every sighting), and how many of them changed and were shipped in full. */
  private usersStaged = 0;
  private usersShipped = 0;
  private lastProgressWrite = 0;
  private readonly progress: ProgressReporter;
  /** Time spent confirming removals with Tines (for the summary line). */
  private confirmMs = 0;
  /** Where the run's time went (for the summary line): the listing, staging's end and the candidates, the transaction. */
  private readonly phaseMs = { list: 0, stage: 0, apply: 0 };
  /** The connector's first sync: the users it adds are the baseline (their events say so). */
  private baseline = false;

  private readonly s: Session;
  private readonly connector: ConnectorRow;
  private readonly runId: number;
  private readonly req: RunContext['request'];
  private readonly log: Logger;

  constructor(private readonly ctx: RunContext) {
    ({ session: this.s, connector: this.connector, runId: this.runId, request: this.req, log: this.log } = ctx);
    this.progress = new ProgressReporter(ctx.log.child({ runId: ctx.runId }));
  }

  private checkAbort(): void {
    if (this.req.signal?.aborted) throw new SyncAbortedError();
  }

  async execute(): Promise<SyncOutcome> {
    const { s, connector, runId, req, log } = this;
    const { config } = this.ctx;
    log.info({ runId, trigger: req.trigger }, 'sync started');
    const client = (await tinesClient).createTinesClient(config, this.ctx.target.baseUrl, this.ctx.apiKey, this.log, this.ctx.hooks);
    await createStaging(s, connector.id);
    const remembered = await RememberedListing.load(s, connector.id, config.tines.pageSize);
    // A connector with no users yet: what this sync finds is its baseline, not joiners.
    this.baseline = await hasNoUsers(s, connector.id);
    if (remembered.verifyAll) log.info('the users were written outside a sync since the last one: every user is compared this time');
    const facts = await this.list(client, remembered, (page, seqStart) => {
      const prepared = preparePage(page, seqStart, page.digest !== undefined ? RememberedListing.keyOf(page.digest) : null);
      return async () => {
        this.usersShipped += await stagePage(s, connector.id, prepared, remembered.verifyAll);
      };
    });
    this.phaseMs.list = Math.round(performance.now() - this.ctx.started);
    const unchanged = remembered.unchanged(this.pagesFetched);
    let distinct = this.usersStaged;
    let duplicates = false;
    if (!unchanged) {
      await remembered.stageKnown(s);
      ({ distinct, duplicates } = await finalizeStaging(s, connector.id));
    }

    // The removal rules: complete and consistent listing, the guard, then confirmation.
    let held = heldReason(facts, distinct);
    const cand: Candidates = unchanged
      ? { candidates: 0, present: distinct }
      : (await s.query<Candidates>(COUNT_CANDIDATES(stageTables(connector.id)), [connector.id])).rows[0]!;
    let removeUsers = false;
    let confirm = { stillPresent: 0, calls: 0 };
    if (!held && cand.candidates > 0) {
      held = guardHold(cand, config.sync, req.allowMassRemoval === true);
      if (!held) {
        log.info({ candidates: cand.candidates }, 'confirming users missing from the listing with Tines');
        confirm = await this.confirm(client, cand.candidates);
        removeUsers = true;
      }
    }
    this.checkAbort();

    // One transaction: the diff, its events, the run row and the connector row.
    const applyStarted = performance.now();
    this.phaseMs.stage = Math.round(applyStarted - this.ctx.started) - this.phaseMs.list - this.confirmMs;
    const result = await s.transaction(async () => {
      await markSyncWriter(s);
      const d = unchanged ? NO_CHANGES : await applyDiff(s, connector.id, runId, { removeUsers, baseline: this.baseline });
      return this.commit(d, remembered, {
        distinct,
        cand,
        confirm,
        held,
        clean: !duplicates,
        complete: !held && (cand.candidates === 0 || confirm.stillPresent === 0),
        unchanged,
      });
    });
    this.phaseMs.apply = Math.round(performance.now() - applyStarted);
    return this.finish(result, confirm.stillPresent);
  }

  /**
   * Walks the listing. `take` prepares a page (CPU) and returns its database
   * write, which runs while the next page is prepared; the client already
   * fetches the one after. Remembered pages need neither.
   */
  private async list(
    client: TinesClient,
    remembered: RememberedListing,
    take: (page: UsersPage, seqStart: number) => () => Promise<void>,
  ): Promise<ListingFacts> {
    const { connector, runId, log } = this;
    const facts: ListingFacts = { countsSeen: new Set(), finalCount: undefined };
    let writing: Promise<void> = Promise.resolve();
    try {
      for await (const page of client.listUsers(this.req.signal, { known: remembered.pages })) {
        if (this.pagesFetched === 0 && connector.status === 'reconnect_required') {
          await recordKeyAccepted(this.s, connector.id, runId);
          log.info('Tines accepted the new API key; the connector is active again');
        }
        this.pagesFetched++;
        this.pagesTotal = pagesTotalOf(page.meta, this.ctx.config.tines.pageSize, this.pagesFetched) ?? this.pagesTotal;
        if (typeof page.meta.count === 'number') facts.countsSeen.add(page.meta.count);
        facts.finalCount = page.meta.count ?? undefined;
        const seqStart = this.usersStaged;
        this.usersStaged += page.size;
        let write: (() => Promise<void>) | null = null;
        if (page.known) remembered.noteKnown(page.page, seqStart);
        else write = take(page, seqStart);
        const progress = { pages: this.pagesFetched, total: this.pagesTotal, users: this.usersStaged };
        if (write) {
          // Only a new write waits for the one in flight: the pages in between are prepared meanwhile.
          await writing;
          writing = this.afterPage(write, progress);
        } else {
          writing = writing.then(() => this.afterPage(null, progress));
        }
        writing.catch(() => undefined); // observed at the next await
        this.checkAbort();
      }
    } catch (err) {
      // Nothing of this run may reach the session after it gives up (the caller rolls back next).
      await writing.catch(() => undefined);
      throw err;
    }
    await writing;
    await updateRunProgress(this.s, runId, this.pagesFetched, this.pagesTotal, this.usersStaged);
    return facts;
  }

  /**
   * The removal confirmations, with their progress in the log and in the run
   * row (confirmations_done of confirmations_total, at most twice a second).
   */
  private async confirm(client: TinesClient, total: number): Promise<ConfirmResult> {
    const { s, runId } = this;
    const started = performance.now();
    await updateConfirmationProgress(this.s, runId, 0, total);
    let writing: Promise<void> = Promise.resolve();
    let lastWrite = performance.now();
    const result = await confirmRemovals(s, client, this.connector.id, this.usersStaged, this.req.signal, (done) => {
      this.progress.confirming(done, total);
      const now = performance.now();
      if (now - lastWrite < 500) return;
      lastWrite = now;
      // One write at a time, in order; a failed one surfaces after the calls.
      writing = writing.then(() => updateConfirmationProgress(this.s, runId, done, total));
      writing.catch(() => undefined); // observed after the calls
    });
    await writing;
    await updateConfirmationProgress(this.s, runId, result.calls, total);
    this.confirmMs = Math.round(performance.now() - started);
    return result;
  }

  /** Writes one page, and keeps the run row current (at most twice a second). */
  private async afterPage(write: (() => Promise<void>) | null, progress: { pages: number; total: number | null; users: number }): Promise<void> {
    if (write) await write();
    const now = performance.now();
    if (now - this.lastProgressWrite >= 500) {
      this.lastProgressWrite = now;
      await updateRunProgress(this.s, this.runId, progress.pages, progress.total, progress.users);
    }
    this.progress.page(progress.pages, progress.total, progress.users);
  }

  /** The end of the run's transaction: the connector still exists, the pages are remembered, the run and connector rows written. */
  private async commit(
    d: DiffCounts,
    remembered: RememberedListing,
    o: {
      distinct: number;
      cand: Candidates;
      confirm: { stillPresent: number; calls: number };
      held: Held | undefined;
      clean: boolean;
      complete: boolean;
      unchanged: boolean;
    },
  ): Promise<{ counts: RunCounts; usersTouched: number; held: Held | undefined; wasStatus: string | undefined }> {
    const { s, connector, runId } = this;
    // Key-share: a concurrent delete of the connector waits for this commit (and then takes these rows along).
    const exists = await s.query('SELECT 1 FROM connectors WHERE id = $1 FOR KEY SHARE', [connector.id]);
    if (exists.rows.length === 0) throw new ConnectorDeletedError(connector.name, connector.id, 'sync');
    const counts: RunCounts = {
      usersSeen: o.distinct,
      usersAdded: d.usersAdded,
      usersUpdated: d.usersUpdated,
      usersRemoved: d.usersRemoved,
      usersRestored: d.usersRestored,
      membershipsAdded: d.membershipsAdded,
      membershipsUpdated: d.membershipsUpdated,
      membershipsRemoved: d.membershipsRemoved,
      removalCandidates: o.cand.candidates,
      confirmCalls: o.confirm.calls,
    };
    // A listing that showed every user once can vouch for its pages next time.
    await remembered.remember(s, runId, { clean: o.clean, complete: o.complete, unchanged: o.unchanged });
    await finishRun(s, runId, o.held ? 'held' : 'succeeded', counts, o.held);
    if (this.baseline && d.usersAdded > 0) await recordBaseline(s, connector.id, runId, d.usersAdded);
    const wasStatus = await recordSyncSuccess(s, connector.id, runId, !o.held);
    return { counts, usersTouched: d.usersTouched, held: o.held, wasStatus };
  }

  /** After the commit: statistics, the outcome and its summary line. */
  private async finish(
    r: { counts: RunCounts; usersTouched: number; held: Held | undefined; wasStatus: string | undefined },
    stillPresent: number,
  ): Promise<SyncOutcome> {
    const { runId, req, log } = this;
    const { counts: runCounts, usersTouched, held, wasStatus } = r;
    const status = held ? 'held' : 'succeeded';
    if (wasStatus) log.info({ from: wasStatus, to: 'active' }, `connector state: ${wasStatus} → active`);
    await refreshStatistics(this.ctx.db.backend, this.s, this.log, runCounts, usersTouched);
    const outcome: SyncOutcome = {
      result: status,
      runId,
      counts: runCounts,
      pagesFetched: this.pagesFetched,
      pagesTotal: this.pagesTotal,
      durationMs: Math.round(performance.now() - this.ctx.started),
      ...(held ? { errorKind: held.kind, message: held.message } : {}),
    };
    const line = {
      runId,
      trigger: req.trigger,
      status,
      durationMs: outcome.durationMs,
      pages: this.pagesFetched,
      ...runCounts,
      usersShipped: this.usersShipped,
      usersTouched,
      stillPresent,
      confirmMs: this.confirmMs,
      listMs: this.phaseMs.list,
      stageMs: this.phaseMs.stage,
      applyMs: this.phaseMs.apply,
    };
    if (held) log.warn({ ...line, errorKind: held.kind }, `sync held: ${held.message}`);
    else log.info(line, 'sync succeeded');
    return outcome;
  }

  /** Records a failed or aborted run. The session may be broken, so the pool writes it. */
  async fail(err: unknown): Promise<SyncOutcome> {
    const { connector, runId, log } = this;
    const { db, fingerprint } = this.ctx;
    const kind = errorKindOf(err);
    const status = kind === 'shutdown' ? 'aborted' : 'failed';
    const message = kind === 'database' || kind === 'internal' ? `${kind} error: ${errorMessage(err)}` : errorMessage(err);
    const counts = { ...ZERO_COUNTS, usersSeen: this.usersStaged };
    try {
      await updateRunProgress(db, runId, this.pagesFetched, this.pagesTotal, this.usersStaged);
      await finishRun(db, runId, status, counts, { kind, message });
      if (kind === 'auth') {
        await recordKeyRefused(db, connector.id, message, fingerprint, runId);
        await recordSyncFailure(db, connector.id, runId, message);
      } else if (kind !== 'shutdown') {
        if (await recordSyncFailure(db, connector.id, runId, message)) {
          log.error({ from: connector.status, to: 'failing' }, `connector state: → failing after repeated failures; last: ${message}`);
        }
      }
    } catch (writeErr) {
      log.error({ runId, err: { message: errorMessage(writeErr) } }, 'could not record the failed run');
    }
    const outcome: SyncOutcome = {
      result: status,
      runId,
      counts,
      pagesFetched: this.pagesFetched,
      pagesTotal: this.pagesTotal,
      durationMs: Math.round(performance.now() - this.ctx.started),
      errorKind: kind,
      message,
    };
    const line = {
      runId,
      trigger: this.req.trigger,
      status,
      errorKind: kind,
      durationMs: outcome.durationMs,
      pages: this.pagesFetched,
      usersSeen: this.usersStaged,
    };
    if (kind === 'shutdown') {
      const why = typeof this.req.signal?.reason === 'string' ? this.req.signal.reason : 'shutdown';
      log.warn(line, why === 'shutdown' ? 'sync aborted by shutdown; nothing of it was applied' : `sync aborted: ${why}; nothing of it was applied`);
    } else if (kind === 'auth') log.error(line, `connector needs a reconnect: ${message}`);
    else if (kind === 'internal') log.error({ ...line, err: { message, stack: err instanceof Error ? err.stack : undefined } }, `sync failed: ${message}`);
    else log.error(line, `sync failed: ${message}`);
    return outcome;
  }
}

/**
 * The listing's page count: meta.pages, or (older tenants send no `pages`)
 * meta.count over the page size; never fewer than the pages already read.
 */
export function pagesTotalOf(meta: Pick<PageMeta, 'pages' | 'count' | 'per_page'>, pageSize: number, fetched: number): number | null {
  let total: number;
  if (typeof meta.pages === 'number') total = meta.pages;
  else if (typeof meta.count === 'number') total = Math.ceil(meta.count / perPageOf(meta, pageSize));
  else return null;
  total = Math.max(total, fetched);
  // Only a display figure: one beyond the column's integer range is not known, not a failed sync.
  return Number.isSafeInteger(total) && total <= 2_147_483_647 ? total : null;
}
