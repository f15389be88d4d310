// One run of a sync, once the lock is held and the run row exists: the listing
// into staging, the removal rules, and the transaction that applies the diff.
import type { ConnectorRow } from '../db/connectors.js';
import { recordSyncFailure, recordSyncSuccess, setConnectorStatus } from '../db/connectors.js';
import type { Session } from '../db/database.js';
import { finishRun, updateRunProgress, ZERO_COUNTS, type RunCounts } from '../db/runs.js';
import { errorMessage, SyncAbortedError, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import { confirmRemovals } from './confirm.js';
import { applyDiff, COUNT_CANDIDATES } from './diff.js';
import { ProgressReporter } from './progress.js';
import { createTinesClient } from '../tines/client.js';
import { errorKindOf, type SyncOutcome } from './outcome.js';
import type { SyncDeps, SyncRequest } from './run-sync.js';
import { createStaging, finalizeStaging, knownPages, pageKey, preparePage, rememberPages, stagePage, type PreparedPage } from './staging.js';

export class SyncRun {
  private pagesFetched = 0;
  private pagesTotal: number | null = null;
  /** Users listed so far (every sighting), and how many of them changed and were shipped in full. */
  private usersStaged = 0;
  private usersShipped = 0;
  private lastProgressWrite = 0;
  private readonly progress: ProgressReporter;

  constructor(
    private readonly deps: SyncDeps,
    private readonly s: Session,
    private readonly connector: ConnectorRow,
    private readonly runId: number,
    private readonly apiKey: string,
    private readonly fingerprint: string,
    private readonly req: SyncRequest,
    private readonly log: Logger,
    private readonly started: number,
  ) {
    this.progress = new ProgressReporter(log.child({ runId }));
  }

  /** Stages one prepared page and keeps the run row current (at most twice a second). */
  private async writePage(prepared: PreparedPage, progress: { pages: number; total: number | null; users: number }): Promise<void> {
    this.usersShipped += await stagePage(this.s, this.connector.id, prepared);
    const now = performance.now();
    if (now - this.lastProgressWrite >= 500) {
      this.lastProgressWrite = now;
      await updateRunProgress(this.s, this.runId, progress.pages, progress.total, progress.users);
    }
    this.progress.page(progress.pages, progress.total, progress.users);
  }

  private checkAbort(): void {
    if (this.req.signal?.aborted) throw new SyncAbortedError();
  }

  async execute(): Promise<SyncOutcome> {
    const { s, connector, runId, req, log } = this;
    const { config } = this.deps;
    log.info({ runId, trigger: req.trigger }, 'sync started');
    const client = createTinesClient(config, this.apiKey, this.log, this.deps.hooks);
    await createStaging(s);

    // 1. The listing, page by page into staging (the client prefetches the next page meanwhile).
    const countsSeen = new Set<number>();
    let finalCount: number | undefined;
    // Pipelined: the database stages page k while this process prepares page k+1
    // (and the client already fetches page k+2).
    let writing: Promise<void> = Promise.resolve();
    // Pages byte for byte as the last committed listing applied them need no per-user work.
    const known = await knownPages(s, connector.id, config.tines.pageSize);
    const isKnownPage = (page: number, digest: string) => known.get(page) === pageKey(digest);
    for await (const page of client.listUsers(req.signal, { isKnownPage })) {
      if (this.pagesFetched === 0 && connector.status === 'reconnect_required') {
        await setConnectorStatus(s, connector.id, 'active', null, { runId });
        log.info('Tines accepted the new API key; the connector is active again');
      }
      this.pagesFetched++;
      if (typeof page.meta.pages === 'number') this.pagesTotal = page.meta.pages;
      if (typeof page.meta.count === 'number') countsSeen.add(page.meta.count);
      finalCount = page.meta.count ?? undefined;
      const prepared = preparePage(page, this.usersStaged);
      this.usersStaged += page.ids.length;
      const progress = { pages: this.pagesFetched, total: this.pagesTotal, users: this.usersStaged };
      await writing;
      writing = this.writePage(prepared, progress);
      writing.catch(() => undefined); // observed at the next await
      this.checkAbort();
    }
    await writing;
    await updateRunProgress(s, runId, this.pagesFetched, this.pagesTotal, this.usersStaged);
    const { distinct, duplicates } = await finalizeStaging(s);

    // 2. The removal rules: complete and consistent listing, the guard, then confirmation.
    let held: { kind: ErrorKind; message: string } | undefined;
    if (finalCount === undefined) {
      held = { kind: 'inconsistent_listing', message: 'Tines sent no meta.count, so the listing cannot be checked for completeness; nothing was removed' };
    } else if (countsSeen.size > 1) {
      held = { kind: 'inconsistent_listing', message: `Tines' user count moved during the listing (${[...countsSeen].join(' → ')}); nothing was removed` };
    } else if (distinct !== finalCount) {
      held = { kind: 'inconsistent_listing', message: `the listing showed ${distinct} distinct users but Tines counts ${finalCount}; nothing was removed` };
    }
    const cand = (await s.query<{ candidates: number; present: number }>(COUNT_CANDIDATES, [connector.id])).rows[0]!;
    let removeUsers = false;
    let confirm = { stillPresent: 0, calls: 0 };
    if (!held && cand.candidates > 0) {
      const { removalGuardPercent: pct, removalGuardMin: min } = config.sync;
      const overGuard = cand.candidates > (cand.present * pct) / 100 && cand.candidates > min;
      if (overGuard && !req.allowMassRemoval) {
        held = {
          kind: 'removal_guard',
          message:
            `${cand.candidates} of ${cand.present} present users are missing from Tines, over the removal guard ` +
            `(more than ${pct}% and more than ${min}); nothing was removed. If this is real, run \`tines-connector sync --allow-mass-removal\``,
        };
      } else {
        log.info({ candidates: cand.candidates }, 'confirming users missing from the listing with Tines');
        confirm = await confirmRemovals(s, client, connector.id, this.usersStaged, req.signal, (calls) =>
          this.progress.confirming(calls, cand.candidates),
        );
        removeUsers = true;
      }
    }
    this.checkAbort();

    // 3. One transaction: the diff, its events, the run row and the connector row.
    const status = held ? 'held' : 'succeeded';
    let wasStatus: string | undefined;
    const counts = await s.transaction(async () => {
      const d = await applyDiff(s, connector.id, runId, removeUsers);
      const c: RunCounts = {
        usersSeen: distinct,
        usersAdded: d.usersAdded,
        usersUpdated: d.usersUpdated,
        usersRemoved: d.usersRemoved,
        usersRestored: d.usersRestored,
        membershipsAdded: d.membershipsAdded,
        membershipsUpdated: d.membershipsUpdated,
        membershipsRemoved: d.membershipsRemoved,
        removalCandidates: cand.candidates,
        confirmCalls: confirm.calls,
      };
      // A listing that showed every user once can vouch for its pages next time.
      await rememberPages(s, connector.id, runId, config.tines.pageSize, !duplicates);
      await finishRun(s, runId, status, c, held);
      wasStatus = await recordSyncSuccess(s, connector.id, runId, !held);
      return { ...c, usersTouched: d.usersTouched };
    });
    if (wasStatus) log.info({ from: wasStatus, to: 'active' }, `connector state: ${wasStatus} → active`);
    const { usersTouched, ...runCounts } = counts;
    await this.refreshStatistics(runCounts, usersTouched, distinct);
    const outcome: SyncOutcome = {
      result: status,
      runId,
      counts: runCounts,
      pagesFetched: this.pagesFetched,
      pagesTotal: this.pagesTotal,
      durationMs: Math.round(performance.now() - this.started),
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
      stillPresent: confirm.stillPresent,
    };
    if (held) log.warn({ ...line, errorKind: held.kind }, `sync held: ${held.message}`);
    else log.info(line, 'sync succeeded');
    return outcome;
  }

  /**
   * After a large change (a first sync, a mass removal) the planner's picture of
   * the tables is stale until autovacuum catches up; the next sync should not
   * pay for that, so the statistics are refreshed now.
   */
  private async refreshStatistics(c: RunCounts, touched: number, seen: number): Promise<void> {
    const written = c.usersAdded + c.usersUpdated + c.usersRemoved + c.usersRestored + touched + c.membershipsAdded + c.membershipsUpdated + c.membershipsRemoved;
    if (written < 1000 || written < seen / 10) return;
    const started = performance.now();
    try {
      await this.s.exec('ANALYZE tines_users; ANALYZE team_memberships');
      this.log.debug({ durationMs: Math.round(performance.now() - started) }, 'table statistics refreshed after a large change');
    } catch (err) {
      this.log.warn({ err: { message: errorMessage(err) } }, 'could not refresh table statistics');
    }
  }

  /** Records a failed or aborted run. The session may be broken, so the pool writes it. */
  async fail(err: unknown): Promise<SyncOutcome> {
    const { connector, runId, log } = this;
    const { db } = this.deps;
    const kind = errorKindOf(err);
    const status = kind === 'shutdown' ? 'aborted' : 'failed';
    const message = kind === 'database' ? `database error: ${errorMessage(err)}` : errorMessage(err);
    const counts = { ...ZERO_COUNTS, usersSeen: this.usersStaged };
    try {
      await updateRunProgress(db, runId, this.pagesFetched, this.pagesTotal, this.usersStaged);
      await finishRun(db, runId, status, counts, { kind, message });
      if (kind === 'auth') {
        await setConnectorStatus(db, connector.id, 'reconnect_required', message, { runId, refusedFingerprint: this.fingerprint });
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
      durationMs: Math.round(performance.now() - this.started),
      errorKind: kind,
      message,
    };
    const line = { runId, trigger: this.req.trigger, status, errorKind: kind, durationMs: outcome.durationMs, pages: this.pagesFetched, usersSeen: this.usersStaged };
    if (kind === 'shutdown') log.warn(line, 'sync aborted by shutdown; nothing of it was applied');
    else if (kind === 'auth') log.error(line, `connector needs a reconnect: ${message}`);
    else log.error(line, `sync failed: ${message}`);
    return outcome;
  }
}
