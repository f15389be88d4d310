// The last committed listing, remembered page by page (listing_pages): a page
// that comes back byte for byte the same needs no parsing and no per-user
// work, and a listing whose every page came back so changed nothing at all.
import type { Session } from '../db/database.js';
import type { PageMeta } from '../tines/schema.js';
import { STAGE_PAGES, STAGE_SEEN } from './staging.js';

/** The pages of the last committed listing, when they can be trusted. */
export interface RememberedListing {
  /** By page number: the stored digest, meta and user count. */
  pages: Map<number, { digest: string; meta: PageMeta; size: number }>;
  /** Its run left exactly the listed users present (nothing held, nothing left to confirm). */
  complete: boolean;
  /** The count of writes by anything but a sync (external_writes.n), when this sync started. */
  externalWrites: number;
  /**
   * Something but a sync wrote the users since the last committed sync: their
   * stored digests no longer vouch for the rows, so every user is shipped and compared.
   */
  verifyAll: boolean;
}

/**
 * The last committed listing's pages: none unless that listing's run is still
 * the latest committed one and nothing but a sync wrote the users or their
 * memberships since (see migration 005).
 */
export async function rememberedListing(s: Session, connectorId: number, perPage: number): Promise<RememberedListing> {
  const c = await s.query<{ external_writes: number; complete: boolean; trusted: boolean; verify_all: boolean }>(
    `SELECT w.n::float8 AS external_writes, c.listing_complete AS complete,
            COALESCE(c.listing_external_writes <> w.n, false) AS verify_all,
            COALESCE(c.listing_run_id = (SELECT r.id FROM sync_runs r
                                          WHERE r.connector_id = c.id AND r.status IN ('succeeded', 'held')
                                          ORDER BY r.id DESC LIMIT 1)
                     AND c.listing_external_writes = w.n, false) AS trusted
       FROM connectors c CROSS JOIN external_writes w WHERE c.id = $1`,
    [connectorId],
  );
  const row = c.rows[0];
  const listing: RememberedListing = {
    pages: new Map(),
    complete: false,
    externalWrites: Number(row?.external_writes ?? 0),
    verifyAll: row?.verify_all === true,
  };
  if (!row?.trusted) return listing;
  listing.complete = row.complete;
  const r = await s.query<{ page: number; digest: string; meta: PageMeta; size: number }>(
    `SELECT page, digest, meta, cardinality(ids) AS size FROM listing_pages WHERE connector_id = $1 AND per_page = $2`,
    [connectorId, perPage],
  );
  for (const p of r.rows) listing.pages.set(p.page, { digest: p.digest, meta: p.meta, size: p.size });
  return listing;
}

/** A page of this listing that came back as remembered: its position in the listing. */
export interface KnownSighting {
  page: number;
  digest: string;
  seqStart: number;
}

/**
 * Records the known pages of this listing, and their users as seen, from what
 * was remembered of them: one statement, whatever the number of pages.
 */
export async function stageKnownPages(s: Session, connectorId: number, perPage: number, pages: readonly KnownSighting[]): Promise<void> {
  if (pages.length === 0) return;
  await s.query(
    `WITH k AS (
       SELECT * FROM unnest($3::int[], $4::text[], $5::bigint[]) AS k(page, digest, seq_start)
     ), pg AS (
       INSERT INTO ${STAGE_PAGES} (page, digest, known, seq_start)
       SELECT page, digest, true, seq_start FROM k
       ON CONFLICT (page) DO UPDATE SET digest = EXCLUDED.digest, known = true, seq_start = EXCLUDED.seq_start, ids = NULL, meta = NULL
     )
     INSERT INTO ${STAGE_SEEN} (tines_user_id, seq)
     SELECT x.id, k.seq_start + x.ord - 1
       FROM k
       JOIN listing_pages l ON l.connector_id = $1 AND l.per_page = $2 AND l.page = k.page
      CROSS JOIN LATERAL unnest(l.ids) WITH ORDINALITY AS x(id, ord)`,
    [connectorId, perPage, pages.map((p) => p.page), pages.map((p) => p.digest), pages.map((p) => p.seqStart)],
  );
}

// $1 connector id, $2 per_page, $3 whether this listing may be remembered, $4 run id,
// $5 external writes when the run started, $6 whether the run left exactly the listed users present,
// $7 whether every page came back as remembered (nothing of them was staged, and nothing changes).
// Pages this listing did not reach are dropped, changed ones updated, unchanged ones not rewritten.
const REMEMBER_PAGES = `
WITH mark AS (
  UPDATE connectors c
     SET listing_run_id = CASE WHEN $3 THEN $4::bigint END,
         listing_external_writes = $5::bigint,
         listing_complete = $3 AND $6
   WHERE c.id = $1
), gone AS (
  DELETE FROM listing_pages l
   WHERE l.connector_id = $1 AND NOT $7
     AND (NOT $3 OR l.per_page <> $2 OR NOT EXISTS (SELECT 1 FROM ${STAGE_PAGES} p WHERE p.page = l.page))
)
INSERT INTO listing_pages (connector_id, per_page, page, digest, ids, meta)
SELECT $1, $2, p.page, p.digest, p.ids, p.meta FROM ${STAGE_PAGES} p WHERE $3 AND NOT $7 AND NOT p.known
ON CONFLICT (connector_id, per_page, page) DO UPDATE SET digest = EXCLUDED.digest, ids = EXCLUDED.ids, meta = EXCLUDED.meta
WHERE listing_pages.digest IS DISTINCT FROM EXCLUDED.digest`;

/**
 * Remembers this listing's pages (in the sync's transaction) when it showed
 * every user once; otherwise forgets them all, so the next sync checks every user.
 */
export async function rememberPages(
  s: Session,
  connectorId: number,
  runId: number,
  perPage: number,
  opts: { clean: boolean; complete: boolean; externalWrites: number; unchanged: boolean },
): Promise<void> {
  await s.query(REMEMBER_PAGES, [connectorId, perPage, opts.clean, runId, opts.externalWrites, opts.complete, opts.unchanged]);
}
