// Users missing from a listing are confirmed one by one with
// GET /api/v1/admin/users/{id}: 404 confirms the removal, an answer keeps the
// user (restaged from that answer). Candidates stream from SQL in batches.
import type { Session } from '../db/database.js';
import type { TinesClient } from '../tines/client.js';
import type { TinesUser } from '../tines/schema.js';
import { CANDIDATE_BATCH } from './diff.js';
import { markConfirmedRemoved, sighting, stageUsers } from './staging.js';

const BATCH = 1000;
/** Parallel confirmation calls; the client's request ceiling still spaces them. */
const CONCURRENCY = 4;

export interface ConfirmResult {
  confirmedRemoved: number;
  stillPresent: number;
  calls: number;
}

export async function confirmRemovals(
  s: Session,
  client: TinesClient,
  connectorId: number,
  seqStart: number,
  signal?: AbortSignal,
  onProgress?: (done: number) => void,
): Promise<ConfirmResult> {
  const result: ConfirmResult = { confirmedRemoved: 0, stillPresent: 0, calls: 0 };
  let seq = seqStart;
  // Candidates are read before any is restaged, so keyset paging on id stays stable.
  let lastId = -1;
  for (;;) {
    const batch = (await s.query<{ id: number }>(CANDIDATE_BATCH, [connectorId, lastId, BATCH])).rows.map((r) => Number(r.id));
    if (batch.length === 0) break;
    lastId = batch[batch.length - 1]!;
    const gone: number[] = [];
    const present: TinesUser[] = [];
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const id = batch[next++]!;
        const user = await client.getUser(id, signal);
        result.calls++;
        if (user) present.push(user);
        else gone.push(id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, batch.length) }, worker));
    await markConfirmedRemoved(s, gone);
    present.sort((a, b) => a.id - b.id);
    await stageUsers(
      s,
      present.map((u, i) => ({ sighting: sighting(u.raw), seq: seq + i })),
    );
    seq += present.length;
    result.confirmedRemoved += gone.length;
    result.stillPresent += present.length;
    onProgress?.(result.calls);
  }
  return result;
}
