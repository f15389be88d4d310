// Per-run staging tables on the sync's own session. Every listed id lands in
// `seen` (for completeness and removals); only users whose JSON changed since
// the last sync (by digest) are shipped in full, with COPY, for the diff.
import { hash } from 'node:crypto';
import { copyValue, escapeCopy, type Session } from '../db/database.js';
import { TinesRequestError } from '../errors.js';
import type { UsersPage } from '../tines/client.js';
import { toTinesUser, type TinesMembership, type TinesUser } from '../tines/schema.js';
import { SQL_TYPE, USER_FIELDS } from '../tines/user-fields.js';

/** The staging tables of one connector's sync. */
export interface StageTables {
  readonly seen: string;
  readonly users: string;
  readonly memberships: string;
  readonly removed: string;
  readonly pages: string;
}

/**
 * The one place staging table names are built: per connector, whose syncs run
 * one at a time (its sync lock). On the embedded database every session shares
 * the temp tables, so syncs of different connectors stage at once only because
 * their tables have different names.
 */
export function stageTables(connectorId: number): StageTables {
  if (!Number.isSafeInteger(connectorId) || connectorId < 0) throw new Error(`bad connector id for staging: ${connectorId}`);
  return {
    seen: `sync_stage_seen_${connectorId}`,
    users: `sync_stage_users_${connectorId}`,
    memberships: `sync_stage_memberships_${connectorId}`,
    removed: `sync_stage_removed_${connectorId}`,
    pages: `sync_stage_pages_${connectorId}`,
  };
}

/**
 * Part of every user digest (raw_hash). Bumping it makes every stored digest differ
 * while the rows do not (the diff compares the rows themselves, so it writes
 * nothing): add a migration that sets raw_hash to NULL with it, and each row is
 * rewritten once with its new digest instead of being shipped and compared again
 * on every page that is not remembered. (A digest also stays as it was when Tines
 * only reorders a user's keys or arrays, which is no change.)
 */
export const DIGEST_VERSION = '1';

/** A user's columns as both staging and tines_users hold them, in the order userRow encodes them. */
const USER_ROW_COLUMNS = ['tines_user_id', ...USER_FIELDS.map((f) => f.column), 'raw', 'raw_hash'] as const;
const USER_COLUMNS = ['seq', ...USER_ROW_COLUMNS, 'has_memberships'] as const;

/** USER_ROW_COLUMNS of one user, encoded for COPY (tab-separated, no line end). */
function userRow(u: TinesUser, x: RawSighting): string {
  let line = String(u.id);
  for (const f of USER_FIELDS) line += `\t${copyValue(u.fields[f.column])}`;
  return `${line}\t${escapeCopy(x.json)}\t${x.digest}`;
}
/** A membership's columns as both staging and team_memberships hold them, in the order membershipRow encodes them. */
const MEMBERSHIP_ROW_COLUMNS = ['tines_user_id', 'team_id', 'team_name', 'role'] as const;
const MEMBERSHIP_COLUMNS = ['seq', ...MEMBERSHIP_ROW_COLUMNS] as const;

/** MEMBERSHIP_ROW_COLUMNS of one membership, encoded for COPY (tab-separated, no line end). */
function membershipRow(u: TinesUser, m: TinesMembership): string {
  return `${u.id}\t${m.teamId}\t${copyValue(m.teamName)}\t${copyValue(m.role)}`;
}

/** A sighting normalised for its row; a user the schema accepted but cannot be stored fails the page. */
function normalise(x: RawSighting): TinesUser {
  const u = toTinesUser(x.raw);
  if (typeof u === 'string') throw new TinesRequestError('invalid_response', `user ${String(x.raw.id)}: ${u}`);
  return u;
}

export async function createStaging(s: Session, connectorId: number): Promise<void> {
  const t = stageTables(connectorId);
  await dropStaging(s, connectorId);
  await s.exec(`
    CREATE TEMP TABLE ${t.seen} (tines_user_id bigint NOT NULL, seq bigint NOT NULL);
    CREATE TEMP TABLE ${t.users} (
      seq bigint NOT NULL, tines_user_id bigint NOT NULL,
      ${USER_FIELDS.map((f) => `${f.column} ${SQL_TYPE[f.kind]}`).join(', ')},
      raw jsonb NOT NULL, raw_hash text NOT NULL, has_memberships boolean NOT NULL
    );
    CREATE TEMP TABLE ${t.memberships} (
      seq bigint NOT NULL, tines_user_id bigint NOT NULL, team_id bigint NOT NULL, team_name text, role text
    );
    CREATE TEMP TABLE ${t.removed} (tines_user_id bigint PRIMARY KEY);
    CREATE TEMP TABLE ${t.pages} (
      page integer PRIMARY KEY, digest text NOT NULL, known boolean NOT NULL, seq_start bigint NOT NULL, ids bigint[], meta jsonb
    );
  `);
}

export async function dropStaging(s: Session, connectorId: number): Promise<void> {
  const t = stageTables(connectorId);
  await s.exec(`DROP TABLE IF EXISTS ${t.seen}, ${t.users}, ${t.memberships}, ${t.removed}, ${t.pages}`);
}

/** A user object as sent, with its JSON text and digest computed once. */
export interface RawSighting {
  raw: Record<string, unknown>;
  json: string;
  digest: string;
}

/** \u0000 escapes (not escaped backslashes before a u0000) in JSON text. */
const JSON_NUL = /(?<!\\)((?:\\\\)*)\\u0000/g;

export function sighting(raw: Record<string, unknown>): RawSighting {
  let json = JSON.stringify(raw);
  // PostgreSQL's jsonb and text cannot hold NUL; one stray NUL must not block a whole tenant.
  if (json.includes('\\u0000')) json = json.replace(JSON_NUL, '$1');
  return { raw, json, digest: hash('md5', `${DIGEST_VERSION}:${json}`, 'base64') };
}

// $1 connector id, $2 ids, $3 digests, $4 seq of the first, $5 page number, $6
// page digest (or null), $7 page meta, $8 whether every user is to be shipped (stored rows are
// in doubt). Records every id and the page as seen, and answers the positions (1-based) of users
// that are new, removed before, or whose digest differs from the stored one.
const SEE_PAGE = (t: StageTables): string => `
WITH p AS (
  SELECT id, h, ord FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS p(id, h, ord)
), seen AS (
  INSERT INTO ${t.seen} (tines_user_id, seq) SELECT id, $4::bigint + ord - 1 FROM p
), pg AS (
  INSERT INTO ${t.pages} (page, digest, known, seq_start, ids, meta)
  SELECT $5::int, $6::text, false, $4::bigint, $2::bigint[], $7::jsonb WHERE $6::text IS NOT NULL
  ON CONFLICT (page) DO UPDATE SET digest = EXCLUDED.digest, known = false, seq_start = EXCLUDED.seq_start,
                                   ids = EXCLUDED.ids, meta = EXCLUDED.meta
)
SELECT p.ord::int AS ord
  FROM p
  -- LATERAL … LIMIT 1 keeps this an index probe per id whatever the table's statistics say.
  LEFT JOIN LATERAL (
    SELECT u.raw_hash, u.removed_at FROM tines_users u
     WHERE u.connector_id = $1 AND u.tines_user_id = p.id LIMIT 1
  ) u ON true
 WHERE $8 OR u.raw_hash IS NULL OR u.removed_at IS NOT NULL OR u.raw_hash <> p.h`;

interface PreparedPage {
  page: number;
  /** The key the page is remembered under (RememberedListing.keyOf), when the listing is remembered. */
  pageDigest: string | null;
  /** The page's meta as sent, kept with the page when the listing is remembered. */
  meta: unknown;
  ids: readonly number[];
  sightings: RawSighting[];
  seqStart: number;
}

/** What staging takes of a listed page. */
type ListedPage = Pick<UsersPage, 'page' | 'ids' | 'raw' | 'digest' | 'meta'>;

/** The CPU half of staging a page (JSON text and digests), done while the database works on the previous one. */
export function preparePage(page: ListedPage, seqStart: number, pageDigest: string | null): PreparedPage {
  return {
    page: page.page,
    pageDigest,
    meta: page.meta,
    ids: page.ids,
    sightings: page.raw.map(sighting),
    seqStart,
  };
}

/**
 * The database half: records the page's ids as seen, and stages in full only
 * the users that changed. Returns how many were staged.
 */
export async function stagePage(
  s: Session,
  connectorId: number,
  { page, pageDigest, meta, ids, sightings, seqStart }: PreparedPage,
  verifyAll = false,
): Promise<number> {
  const r = await s.query<{ ord: number }>(
    SEE_PAGE(stageTables(connectorId)),
    [connectorId, ids, sightings.map((x) => x.digest), seqStart, page, pageDigest, JSON.stringify(meta), verifyAll],
    { name: `tines_connector_see_page_${connectorId}` },
  );
  if (r.rows.length === 0) return 0;
  const changed = r.rows.map((row) => ({ sighting: sightings[row.ord - 1]!, seq: seqStart + row.ord - 1 }));
  await stageUsers(s, connectorId, changed);
  return changed.length;
}

/** Ships full rows (and memberships) into the staging tables with COPY. */
export async function stageUsers(s: Session, connectorId: number, users: readonly { sighting: RawSighting; seq: number }[]): Promise<void> {
  if (users.length === 0) return;
  const t = stageTables(connectorId);
  const userLines: string[] = new Array(users.length);
  const memberLines: string[] = [];
  for (let i = 0; i < users.length; i++) {
    const { sighting: x, seq } = users[i]!;
    const u = normalise(x);
    userLines[i] = `${seq}\t${userRow(u, x)}\t${u.memberships ? 't' : 'f'}\n`;
    for (const m of u.memberships ?? []) memberLines.push(`${seq}\t${membershipRow(u, m)}\n`);
  }
  await s.copyText(t.users, USER_COLUMNS, userLines.join(''));
  if (memberLines.length > 0) await s.copyText(t.memberships, MEMBERSHIP_COLUMNS, memberLines.join(''));
}

/**
 * Makes the staged listing one row per user, the latest sighting winning: when
 * paging showed a user twice, an older staged copy gives way to a newer one, or
 * to a newer unchanged sighting (the stored row is then current). Returns the
 * number of distinct users seen, and whether any was seen twice.
 */
export async function finalizeStaging(s: Session, connectorId: number): Promise<{ distinct: number; duplicates: boolean }> {
  const t = stageTables(connectorId);
  await s.exec(`ANALYZE ${t.seen}`);
  const r = await s.query<{ total: number; distinct_ids: number }>(
    `SELECT count(*)::int AS total, count(DISTINCT tines_user_id)::int AS distinct_ids FROM ${t.seen}`,
  );
  const { total, distinct_ids } = r.rows[0]!;
  if (total !== distinct_ids) {
    await s.query(
      `DELETE FROM ${t.users} a
        WHERE EXISTS (SELECT 1 FROM ${t.seen} x WHERE x.tines_user_id = a.tines_user_id AND x.seq > a.seq)`,
    );
    await s.query(`DELETE FROM ${t.memberships} m WHERE NOT EXISTS (SELECT 1 FROM ${t.users} u WHERE u.seq = m.seq)`);
  }
  // Indexed after the load (cheaper than during it): without them a plan that
  // probes staging per row turns quadratic on large tenants (seen at 1M users).
  await s.exec(
    `CREATE UNIQUE INDEX ON ${t.users} (tines_user_id); CREATE INDEX ON ${t.memberships} (tines_user_id, team_id);
     ANALYZE ${t.users}; ANALYZE ${t.memberships}`,
  );
  return { distinct: distinct_ids, duplicates: total !== distinct_ids };
}

export async function markConfirmedRemoved(s: Session, connectorId: number, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  const t = stageTables(connectorId);
  await s.query(`INSERT INTO ${t.removed} (tines_user_id) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING`, [ids]);
}

/** True when the connector has no user rows at all: its first sync. */
export async function hasNoUsers(s: Session, connectorId: number): Promise<boolean> {
  const r = await s.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM tines_users WHERE connector_id = $1) AS empty', [connectorId]);
  return r.rows[0]?.empty === true;
}

/** Marks the current transaction as a sync's, so its writes are not counted as external (migration 005). */
export async function markSyncWriter(s: Session): Promise<void> {
  await s.query(`SELECT set_config('tines_connector.writer', 'sync', true)`);
}
