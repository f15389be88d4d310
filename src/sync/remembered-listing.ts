// The remembered listing: the last committed listing, page by page
// (listing_pages: each page's digest, ids and meta). A page that comes back
// byte for byte as remembered needs no parsing and no per-user work (its users
// are recorded as seen from what was kept), and a listing whose every page
// came back so changed nothing at all. Everything about it is here: when it
// can be trusted (migrations 004 and 005), the pages handed to the client to
// recognise, the pages of this listing, and remembering them at the commit.
import type { Session } from '../db/database.js';
import type { KnownPage } from '../tines/client.js';
import type { PageMeta } from '../tines/schema.js';
import { DIGEST_VERSION, stageTables, type StageTables } from './staging.js';

/** What a page is stored under: its body digest, with the user digests' version (a bump forgets every page). */
const KEY_PREFIX = `${DIGEST_VERSION}:`;

export class RememberedListing {
  /** Pages of this listing that came back as remembered: number, stored key, first position in the listing. */
  private readonly knownSightings: { page: number; key: string; seqStart: number }[] = [];

  private constructor(
    private readonly connectorId: number,
    private readonly perPage: number,
    /** By page number, what the client needs to recognise a page: its body digest, meta and size. */
    readonly pages: ReadonlyMap<number, KnownPage>,
    /** The remembering run left exactly the listed users present (nothing held, nothing left to confirm). */
    private readonly complete: boolean,
    /** The count of writes by anything but a sync (external_writes.n) when this sync started. */
    readonly externalWrites: number,
    /**
     * Something but a sync wrote the users since the last committed sync: their
     * stored digests no longer vouch for the rows, so every user is shipped and compared.
     */
    readonly verifyAll: boolean,
  ) {}

  /**
   * The last committed listing's pages: none unless that listing's run is still
   * the latest committed one and nothing but a sync wrote the users or their
   * memberships since (see migration 005).
   */
  static async load(s: Session, connectorId: number, perPage: number): Promise<RememberedListing> {
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
    const pages = new Map<number, KnownPage>();
    if (row?.trusted) {
      const r = await s.query<{ page: number; digest: string; meta: PageMeta; size: number }>(
        `SELECT page, digest, meta, cardinality(ids) AS size FROM listing_pages WHERE connector_id = $1 AND per_page = $2`,
        [connectorId, perPage],
      );
      for (const p of r.rows) {
        if (p.digest.startsWith(KEY_PREFIX)) pages.set(p.page, { digest: p.digest.slice(KEY_PREFIX.length), meta: p.meta, size: p.size });
      }
    }
    return new RememberedListing(
      connectorId,
      perPage,
      pages,
      row?.trusted === true && row.complete,
      Number(row?.external_writes ?? 0),
      row?.verify_all === true,
    );
  }

  /** The key a newly listed page is recorded under (with its ids and meta, in staging) from the client's body digest. */
  static keyOf(bodyDigest: string): string {
    return `${KEY_PREFIX}${bodyDigest}`;
  }

  /** Page `page` of this listing came back as remembered, its first user at position `seqStart`. */
  noteKnown(page: number, seqStart: number): void {
    this.knownSightings.push({ page, key: RememberedListing.keyOf(this.pages.get(page)!.digest), seqStart });
  }

  /** Every page of this listing came back as remembered, and that listing left exactly its users present: nothing changed. */
  unchanged(pagesFetched: number): boolean {
    return pagesFetched > 0 && this.knownSightings.length === pagesFetched && this.pages.size === pagesFetched && this.complete;
  }

  /**
   * Records the known pages of this listing, and their users as seen, from what
   * was remembered of them: one statement, whatever the number of pages.
   */
  async stageKnown(s: Session): Promise<void> {
    const pages = this.knownSightings;
    if (pages.length === 0) return;
    const t = stageTables(this.connectorId);
    await s.query(
      `WITH k AS (
         SELECT * FROM unnest($3::int[], $4::text[], $5::bigint[]) AS k(page, digest, seq_start)
       ), pg AS (
         INSERT INTO ${t.pages} (page, digest, known, seq_start)
         SELECT page, digest, true, seq_start FROM k
         ON CONFLICT (page) DO UPDATE SET digest = EXCLUDED.digest, known = true, seq_start = EXCLUDED.seq_start, ids = NULL, meta = NULL
       )
       INSERT INTO ${t.seen} (tines_user_id, seq)
       SELECT x.id, k.seq_start + x.ord - 1
         FROM k
         JOIN listing_pages l ON l.connector_id = $1 AND l.per_page = $2 AND l.page = k.page
        CROSS JOIN LATERAL unnest(l.ids) WITH ORDINALITY AS x(id, ord)`,
      [this.connectorId, this.perPage, pages.map((p) => p.page), pages.map((p) => p.key), pages.map((p) => p.seqStart)],
    );
  }

  /**
   * In the sync's transaction: remembers this listing's pages when it showed
   * every user once (`clean`); otherwise forgets them all, so the next sync
   * checks every user. `complete`: the run left exactly the listed users present.
   */
  async remember(s: Session, runId: number, opts: { clean: boolean; complete: boolean; unchanged: boolean }): Promise<void> {
    await s.query(REMEMBER_PAGES(stageTables(this.connectorId)), [
      this.connectorId,
      this.perPage,
      opts.clean,
      runId,
      this.externalWrites,
      opts.complete,
      opts.unchanged,
    ]);
  }
}

// $1 connector id, $2 per_page, $3 whether this listing may be remembered, $4 run id,
// $5 external writes when the run started, $6 whether the run left exactly the listed users present,
// $7 whether every page came back as remembered (nothing of them was staged, and nothing changes).
// Pages this listing did not reach are dropped, changed ones updated, unchanged ones not rewritten.
const REMEMBER_PAGES = (t: StageTables): string => `
WITH mark AS (
  UPDATE connectors c
     SET listing_run_id = CASE WHEN $3 THEN $4::bigint END,
         listing_external_writes = $5::bigint,
         listing_complete = $3 AND $6
   WHERE c.id = $1
), gone AS (
  DELETE FROM listing_pages l
   WHERE l.connector_id = $1 AND NOT $7
     AND (NOT $3 OR l.per_page <> $2 OR NOT EXISTS (SELECT 1 FROM ${t.pages} p WHERE p.page = l.page))
)
INSERT INTO listing_pages (connector_id, per_page, page, digest, ids, meta)
SELECT $1, $2, p.page, p.digest, p.ids, p.meta FROM ${t.pages} p WHERE $3 AND NOT $7 AND NOT p.known
ON CONFLICT (connector_id, per_page, page) DO UPDATE SET digest = EXCLUDED.digest, ids = EXCLUDED.ids, meta = EXCLUDED.meta
WHERE listing_pages.digest IS DISTINCT FROM EXCLUDED.digest`;
