// `query`'s result as the command prints it: every column (two of the same
// name too) with its type, and the rows as arrays, handed over in batches. On a
// database this process opens, a SELECT-like statement is read through a
// cursor, so a result larger than memory streams (csv, json) instead of
// aborting the process; SHOW and EXPLAIN (which a cursor cannot hold) and a
// statement through a running daemon's gateway (at most GATEWAY_MAX_ROWS rows)
// come as one batch.
import type { ResultField } from '../db/database.js';
import { tableThroughGateway } from '../daemon/local-gateway.js';
import { cursorCanHold, readOnlyRefusal } from '../db/read-only.js';
import { readAccess, type CommandContext } from './context.js';

/**
 * Types kept as PostgreSQL's text on both backends, so both print the same:
 * dates (a Date object made of a date shifts by the client's time zone),
 * timestamps, times, intervals, bytea (`\x…` hex), and arrays of them.
 */
export const TEXT_TYPES: readonly number[] = [17, 1001, 1082, 1182, 1083, 1183, 1114, 1115, 1184, 1185, 1186, 1187, 1266, 1270];

/** Rows fetched per round trip of the cursor. */
const BATCH_ROWS = 2000;

export interface ResultBatch {
  /** The same in every batch. */
  fields: readonly ResultField[];
  rows: readonly (readonly unknown[])[];
}

/** Carries the end of the read out of its transaction, which then rolls back. */
class Done extends Error {}

/**
 * Runs `sql` read-only and hands its result to `onBatch`, batch after batch
 * (at least one, so an empty result still has its columns). `onBatch` may be
 * slow (a pipe's reader): the next batch is fetched when it has returned.
 */
export async function readResult(ctx: CommandContext, sql: string, onBatch: (batch: ResultBatch) => Promise<void>): Promise<void> {
  const { db } = await readAccess(ctx);
  if (!db) {
    // A running daemon holds the embedded database: its gateway answers in one piece.
    const r = await tableThroughGateway(ctx.config.database.dataDir, sql, TEXT_TYPES);
    if (!r) throw new Error(`the daemon holding ${ctx.config.database.dataDir} stopped answering`);
    await onBatch({ fields: r.fields, rows: r.rows });
    return;
  }
  const refused = readOnlyRefusal(sql);
  if (refused) throw new Error(refused);
  const statement = sql.replace(/[\s;]+$/, '');
  const opts = { rowMode: 'array', textTypes: TEXT_TYPES } as const;
  try {
    await db.withSession((s) =>
      s.transaction(async () => {
        await s.query('SET TRANSACTION READ ONLY');
        await s.query(`SET LOCAL statement_timeout = '120s'`);
        if (!cursorCanHold(statement)) {
          const r = await s.query<unknown[]>(statement, [], opts);
          await onBatch({ fields: r.fields ?? [], rows: r.rows });
          throw new Done();
        }
        await s.query(`DECLARE tines_connector_query NO SCROLL CURSOR FOR ${statement}`);
        for (;;) {
          const r = await s.query<unknown[]>(`FETCH ${BATCH_ROWS} FROM tines_connector_query`, [], opts);
          await onBatch({ fields: r.fields ?? [], rows: r.rows });
          if (r.rows.length < BATCH_ROWS) throw new Done();
        }
      }),
    );
  } catch (err) {
    // Rolled back in every case: even a set_config() the statement smuggles in is undone.
    if (!(err instanceof Done)) throw err;
  }
}
