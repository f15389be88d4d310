// The diff: set-based SQL from the staging tables into tines_users and
// team_memberships, each change with its change_events row, in the caller's
// transaction. Rows that did not change are never written (IS DISTINCT FROM).
import type { Queryable } from '../db/database.js';
import { USER_FIELDS } from '../tines/user-fields.js';
import { stageTables, type StageTables } from './staging.js';

/** Fields whose change is a `user_updated` event. last_seen, the timestamps and raw change the row silently. */
const TRACKED_USER_FIELDS = USER_FIELDS.filter((f) => f.change === 'event').map((f) => f.column);

/** Fields compared other than as plain values (e.g. as sets), by column. */
const COMPARED_AS: Partial<Record<string, (expr: string) => string>> = Object.fromEntries(
  USER_FIELDS.filter((f) => f.comparedAs).map((f) => [f.column, f.comparedAs!]),
);

/** SQL that is true when field `f` differs between the two rows. */
function differs(f: string, newPrefix: string, oldPrefix: string): string {
  const plain = `${newPrefix}${f} IS DISTINCT FROM ${oldPrefix}${f}`;
  const as = COMPARED_AS[f];
  return as ? `(${plain} AND ${as(newPrefix + f)} IS DISTINCT FROM ${as(oldPrefix + f)})` : plain;
}

/** {"field": {"from": old, "to": new}} for each field that differs, built in SQL. */
function changeDetails(fields: readonly string[], newPrefix: string, oldPrefix: string): string {
  return fields
    .map(
      (f) =>
        `CASE WHEN ${differs(f, newPrefix, oldPrefix)}
              THEN jsonb_build_object('${f}', jsonb_build_object('from', to_jsonb(${oldPrefix}${f}), 'to', to_jsonb(${newPrefix}${f})))
              ELSE '{}'::jsonb END`,
    )
    .join(' || ');
}

/** Fields whose change rewrites the row: every stored field. raw is compared in its canonical form, and raw_hash not at all. */
const ROW_FIELDS = USER_FIELDS.map((f) => f.column);

/** The staged value of each field; one Tines left out keeps the stored value. */
const STAGED_VALUES = USER_FIELDS.map((f) => (f.absentKeepsStored ? `COALESCE(s.${f.column}, u.${f.column}) AS ${f.column}` : `s.${f.column}`)).join(', ');
/** The stored row's values, as o_<column>. */
const STORED_VALUES = [...ROW_FIELDS, 'raw', 'raw_hash', 'removed_at'].map((c) => `u.${c} AS o_${c}`).join(', ');

/** `{"baseline": true}` when $3 says the run is the connector's first (its arrivals are the baseline, not joiners), else `{}`. */
const BASELINE_DETAILS = `CASE WHEN $3::boolean THEN '{"baseline": true}'::jsonb ELSE '{}'::jsonb END`;

// $1 connector id, $2 sync run id.
const UPDATE_USERS = (t: StageTables): string => `
WITH cur AS (
  SELECT s.tines_user_id, ${STAGED_VALUES}, s.raw, s.raw_hash,
         ${STORED_VALUES}
    FROM ${t.users} s
    JOIN tines_users u ON u.connector_id = $1 AND u.tines_user_id = s.tines_user_id
), changed AS (
  SELECT cur.*, ${changeDetails(TRACKED_USER_FIELDS, 'cur.', 'cur.o_')} AS details
    FROM cur
   WHERE o_removed_at IS NOT NULL
      OR ${ROW_FIELDS.map((f) => differs(f, '', 'o_')).join('\n      OR ')}
      -- A digest that differs only because keys or arrays came in another order is no change either;
      -- a row stored before digests existed gets its digest once.
      OR (raw IS DISTINCT FROM o_raw AND tines_user_canonical(raw) IS DISTINCT FROM tines_user_canonical(o_raw))
      OR o_raw_hash IS NULL
), upd AS (
  UPDATE tines_users u
     SET ${ROW_FIELDS.map((c) => `${c} = c.${c}`).join(', ')},
         raw = c.raw, raw_hash = c.raw_hash, removed_at = NULL, row_updated_at = now()
    FROM changed c
   WHERE u.connector_id = $1 AND u.tines_user_id = c.tines_user_id
  RETURNING c.tines_user_id, c.email, c.details, c.o_removed_at
), ev AS (
  INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, details)
  SELECT $1::bigint, $2::bigint, now(),
         CASE WHEN o_removed_at IS NOT NULL THEN 'user_restored' ELSE 'user_updated' END,
         tines_user_id, email,
         CASE WHEN o_removed_at IS NOT NULL
              THEN details || jsonb_build_object('removed_at', jsonb_build_object('from', o_removed_at, 'to', NULL))
              ELSE details END
    FROM upd
   WHERE o_removed_at IS NOT NULL OR details <> '{}'::jsonb
  RETURNING kind
)
SELECT (SELECT count(*) FROM upd)::int AS touched,
       (SELECT count(*) FROM ev WHERE kind = 'user_updated')::int AS updated,
       (SELECT count(*) FROM ev WHERE kind = 'user_restored')::int AS restored`;

// $1 connector id, $2 sync run id, $3 whether this is the connector's first sync.
const INSERT_USERS = (t: StageTables): string => `
WITH ins AS (
  INSERT INTO tines_users (connector_id, tines_user_id, ${ROW_FIELDS.join(', ')}, first_seen_at, raw, raw_hash)
  SELECT $1, s.tines_user_id, ${ROW_FIELDS.map((c) => `s.${c}`).join(', ')}, now(), s.raw, s.raw_hash
    FROM ${t.users} s
   WHERE NOT EXISTS (SELECT 1 FROM tines_users u WHERE u.connector_id = $1 AND u.tines_user_id = s.tines_user_id)
   ORDER BY s.tines_user_id
  RETURNING tines_user_id, email
), ev AS (
  INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, details)
  SELECT $1::bigint, $2::bigint, now(), 'user_added', tines_user_id, email, ${BASELINE_DETAILS} FROM ins
)
SELECT count(*)::int AS added FROM ins`;

/** Memberships of users whose object carried team_memberships: new, re-added and changed ones. $3 as INSERT_USERS'. */
const UPSERT_MEMBERSHIPS = (t: StageTables): string => `
WITH m AS (
  SELECT sm.tines_user_id, sm.team_id, sm.team_name, sm.role,
         t.team_name AS o_team_name, t.role AS o_role,
         (t.tines_user_id IS NULL OR t.removed_at IS NOT NULL) AS is_added
    FROM ${t.memberships} sm
    LEFT JOIN team_memberships t
      ON t.connector_id = $1 AND t.tines_user_id = sm.tines_user_id AND t.team_id = sm.team_id
   WHERE t.tines_user_id IS NULL OR t.removed_at IS NOT NULL
      OR (sm.team_name, sm.role) IS DISTINCT FROM (t.team_name, t.role)
), up AS (
  INSERT INTO team_memberships AS t (connector_id, tines_user_id, team_id, team_name, role, first_seen_at)
  SELECT $1, tines_user_id, team_id, team_name, role, now() FROM m
  ON CONFLICT (connector_id, tines_user_id, team_id) DO UPDATE
     SET team_name = EXCLUDED.team_name, role = EXCLUDED.role, removed_at = NULL, row_updated_at = now()
  RETURNING t.tines_user_id
), ev AS (
  INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, team_id, details)
  SELECT $1::bigint, $2::bigint, now(),
         CASE WHEN m.is_added THEN 'membership_added' ELSE 'membership_updated' END,
         m.tines_user_id, u.email, m.team_id,
         CASE WHEN m.is_added
              THEN jsonb_build_object('team_name', m.team_name, 'role', m.role) || ${BASELINE_DETAILS}
              ELSE jsonb_build_object('team_name', m.team_name) || ${changeDetails(['role', 'team_name'], 'm.', 'm.o_')}
         END
    FROM m
    JOIN tines_users u ON u.connector_id = $1 AND u.tines_user_id = m.tines_user_id
  RETURNING kind
)
SELECT (SELECT count(*) FROM ev WHERE kind = 'membership_added')::int AS added,
       (SELECT count(*) FROM ev WHERE kind = 'membership_updated')::int AS updated,
       (SELECT count(*) FROM up)::int AS written`;

/** Memberships missing from a user object that did carry team_memberships: that user left the team. */
const REMOVE_MISSING_MEMBERSHIPS = (t: StageTables): string => `
WITH r AS (
  UPDATE team_memberships t
     SET removed_at = now(), row_updated_at = now()
    FROM ${t.users} s
   WHERE s.has_memberships AND t.connector_id = $1 AND t.tines_user_id = s.tines_user_id AND t.removed_at IS NULL
     AND NOT EXISTS (SELECT 1 FROM ${t.memberships} sm
                      WHERE sm.tines_user_id = t.tines_user_id AND sm.team_id = t.team_id)
  RETURNING t.tines_user_id, t.team_id, t.team_name, t.role, s.email
), ev AS (
  INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, team_id, details)
  SELECT $1::bigint, $2::bigint, now(), 'membership_removed', tines_user_id, email, team_id,
         jsonb_build_object('team_name', team_name, 'role', role)
    FROM r
)
SELECT count(*)::int AS removed FROM r`;

/** Users Tines confirmed gone (404), and the memberships that went with them. */
const REMOVE_USERS = (t: StageTables): string => `
WITH r AS (
  UPDATE tines_users u
     SET removed_at = now(), row_updated_at = now()
    FROM ${t.removed} x
   WHERE u.connector_id = $1 AND u.tines_user_id = x.tines_user_id AND u.removed_at IS NULL
  RETURNING u.tines_user_id, u.email
), rm AS (
  UPDATE team_memberships t
     SET removed_at = now(), row_updated_at = now()
    FROM r
   WHERE t.connector_id = $1 AND t.tines_user_id = r.tines_user_id AND t.removed_at IS NULL
  RETURNING t.tines_user_id, t.team_id, t.team_name, t.role, r.email
), ev AS (
  INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, email, team_id, details)
  SELECT $1::bigint, $2::bigint, now(), 'user_removed', tines_user_id, email, NULL::bigint, '{}'::jsonb FROM r
  UNION ALL
  SELECT $1::bigint, $2::bigint, now(), 'membership_removed', tines_user_id, email, team_id,
         jsonb_build_object('team_name', team_name, 'role', role, 'reason', 'user_removed')
    FROM rm
)
SELECT (SELECT count(*) FROM r)::int AS users, (SELECT count(*) FROM rm)::int AS memberships`;

export interface DiffCounts {
  usersAdded: number;
  usersUpdated: number;
  usersRestored: number;
  /** Rows rewritten without an event (last_seen and other usage-only changes included). */
  usersTouched: number;
  usersRemoved: number;
  membershipsAdded: number;
  membershipsUpdated: number;
  membershipsRemoved: number;
}

/**
 * Applies the staged listing. With `removeUsers` false (a held run) no user is
 * removed; memberships of users whose object was seen still follow that object.
 * With `baseline` (the connector's first sync) the arrivals' events say so.
 * Must run inside the caller's transaction.
 */
export async function applyDiff(tx: Queryable, connectorId: number, runId: number, opts: { removeUsers: boolean; baseline: boolean }): Promise<DiffCounts> {
  const t = stageTables(connectorId);
  const p = [connectorId, runId];
  const added = [connectorId, runId, opts.baseline];
  const upd = (await tx.query<{ touched: number; updated: number; restored: number }>(UPDATE_USERS(t), p)).rows[0]!;
  const ins = (await tx.query<{ added: number }>(INSERT_USERS(t), added)).rows[0]!;
  const mem = (await tx.query<{ added: number; updated: number }>(UPSERT_MEMBERSHIPS(t), added)).rows[0]!;
  const memRemoved = (await tx.query<{ removed: number }>(REMOVE_MISSING_MEMBERSHIPS(t), p)).rows[0]!;
  let removed = { users: 0, memberships: 0 };
  if (opts.removeUsers) removed = (await tx.query<{ users: number; memberships: number }>(REMOVE_USERS(t), p)).rows[0]!;
  return {
    usersAdded: ins.added,
    usersUpdated: upd.updated,
    usersRestored: upd.restored,
    usersTouched: upd.touched,
    usersRemoved: removed.users,
    membershipsAdded: mem.added,
    membershipsUpdated: mem.updated,
    membershipsRemoved: memRemoved.removed + removed.memberships,
  };
}

// $1 connector id. Present users the listing did not show: removal candidates.
export const COUNT_CANDIDATES = (t: StageTables): string => `
SELECT count(*)::int AS candidates,
       (SELECT count(*) FROM tines_users WHERE connector_id = $1 AND removed_at IS NULL)::int AS present
  FROM tines_users u
 WHERE u.connector_id = $1 AND u.removed_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM ${t.seen} s WHERE s.tines_user_id = u.tines_user_id)`;

// $1 connector id, $2 last id of the previous batch, $3 batch size.
export const CANDIDATE_BATCH = (t: StageTables): string => `
SELECT u.tines_user_id::bigint AS id
  FROM tines_users u
 WHERE u.connector_id = $1 AND u.removed_at IS NULL AND u.tines_user_id > $2
   AND NOT EXISTS (SELECT 1 FROM ${t.seen} s WHERE s.tines_user_id = u.tines_user_id)
   AND NOT EXISTS (SELECT 1 FROM ${t.users} s WHERE s.tines_user_id = u.tines_user_id)
 ORDER BY u.tines_user_id
 LIMIT $3`;
