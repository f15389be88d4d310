// Users missing from a listing are confirmed one by one with
// GET /api/v1/admin/users/{id}: 404 confirms the removal, an answer keeps the
// user (restaged from that answer). Candidates stream from SQL in batches.
import type { Session } from '../db/database.js';
import type { TinesClient } from '../tines/client.js';
import type { TinesUser } from '../tines/schema.js';
import { SyncAbortedError } from '../errors.js';
import { CANDIDATE_BATCH } from './diff.js';
import { markConfirmedRemoved, sighting, stageTables, stageUsers } from './staging.js';

const BATCH = 1000;
/** Parallel confirmation calls; the client's request ceiling still spaces them. */
const CONCURRENCY = 4;

export interface ConfirmResult {
  stillPresent: number;
  calls: number;
}

export async function confirmRemovals(
  s: Session,
  client: TinesClient,
  connectorId: number,
  seqStart: number,
  signal?: AbortSignal,
  /** Called after each call with the number of calls so far. */
  onProgress?: (done: number) => void,
): Promise<ConfirmResult> {
  const result: ConfirmResult = { stillPresent: 0, calls: 0 };
  let seq = seqStart;
  // Candidates are read before any is restaged, so keyset paging on id stays stable.
  let lastId = -1;
  for (;;) {
    const batch = (await s.query<{ id: number }>(CANDIDATE_BATCH(stageTables(connectorId)), [connectorId, lastId, BATCH])).rows.map((r) => Number(r.id));
    if (batch.length === 0) break;
    lastId = batch[batch.length - 1]!;
    const gone: number[] = [];
    const present: TinesUser[] = [];
    let next = 0;
    // The first failure stops the other workers at once: a dead run must not keep calling Tines.
    const stop = new AbortController();
    const workerSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const worker = async () => {
      try {
        while (next < batch.length && !workerSignal.aborted) {
          const id = batch[next++]!;
          const user = await client.getUser(id, workerSignal);
          result.calls++;
          if (user) present.push(user);
          else gone.push(id);
          onProgress?.(result.calls);
        }
      } catch (err) {
        stop.abort();
        throw err;
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENCY, batch.length) }, worker));
    // The first real failure, not the aborts it caused in the other workers.
    const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length > 0) throw failures.find((e) => !(e instanceof SyncAbortedError) || signal?.aborted) ?? failures[0];
    await markConfirmedRemoved(s, connectorId, gone);
    present.sort((a, b) => a.id - b.id);
    await stageUsers(
      s,
      connectorId,
      present.map((u, i) => ({ sighting: sighting(u.raw), seq: seq + i })),
    );
    seq += present.length;
    result.stillPresent += present.length;
  }
  return result;
}
