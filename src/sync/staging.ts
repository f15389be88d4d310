// Per-run staging tables on the sync's own session. Pages stream in with COPY;
// the diff then runs as set-based SQL against them. Nothing is held in memory.
import { copyValue, escapeCopy, type Session } from '../db/database.js';
import type { TinesUser } from '../tines/schema.js';

export const STAGE_USERS = 'sync_stage_users';
export const STAGE_MEMBERSHIPS = 'sync_stage_memberships';
export const STAGE_REMOVED = 'sync_stage_removed';

const USER_COLUMNS = [
  'seq',
  'tines_user_id',
  'email',
  'first_name',
  'last_name',
  'admin',
  'is_active',
  'tenant_permissions',
  'scim_uid',
  'tines_created_at',
  'tines_updated_at',
  'last_seen_at',
  'raw',
  'has_memberships',
] as const;
const MEMBERSHIP_COLUMNS = ['seq', 'tines_user_id', 'team_id', 'team_name', 'role'] as const;

export async function createStaging(s: Session): Promise<void> {
  await dropStaging(s);
  await s.exec(`
    CREATE TEMP TABLE ${STAGE_USERS} (
      seq bigint NOT NULL, tines_user_id bigint NOT NULL, email text, first_name text, last_name text,
      admin boolean, is_active boolean, tenant_permissions text[], scim_uid text,
      tines_created_at timestamptz, tines_updated_at timestamptz, last_seen_at timestamptz,
      raw jsonb NOT NULL, has_memberships boolean NOT NULL
    );
    CREATE TEMP TABLE ${STAGE_MEMBERSHIPS} (
      seq bigint NOT NULL, tines_user_id bigint NOT NULL, team_id bigint NOT NULL, team_name text, role text
    );
    CREATE TEMP TABLE ${STAGE_REMOVED} (tines_user_id bigint PRIMARY KEY);
  `);
}

export async function dropStaging(s: Session): Promise<void> {
  await s.exec(`DROP TABLE IF EXISTS ${STAGE_USERS}, ${STAGE_MEMBERSHIPS}, ${STAGE_REMOVED}`);
}

/** Appends users to the staging tables; `seq` orders them so a later sighting of a user wins. */
export async function stageUsers(s: Session, users: readonly TinesUser[], seqStart: number): Promise<void> {
  if (users.length === 0) return;
  const userLines: string[] = new Array(users.length);
  const memberLines: string[] = [];
  for (let i = 0; i < users.length; i++) {
    const u = users[i]!;
    const seq = seqStart + i;
    userLines[i] =
      `${seq}\t${u.id}\t${copyValue(u.email)}\t${copyValue(u.firstName)}\t${copyValue(u.lastName)}\t` +
      `${copyValue(u.admin)}\t${copyValue(u.isActive)}\t${copyValue(u.tenantPermissions)}\t${copyValue(u.scimUid)}\t` +
      `${copyValue(u.createdAt)}\t${copyValue(u.updatedAt)}\t${copyValue(u.lastSeen)}\t` +
      `${escapeCopy(JSON.stringify(u.raw))}\t${u.memberships ? 't' : 'f'}\n`;
    if (u.memberships) {
      for (const m of u.memberships) {
        memberLines.push(`${seq}\t${u.id}\t${m.teamId}\t${copyValue(m.teamName)}\t${copyValue(m.role)}\n`);
      }
    }
  }
  await s.copyText(STAGE_USERS, USER_COLUMNS, userLines.join(''));
  if (memberLines.length > 0) await s.copyText(STAGE_MEMBERSHIPS, MEMBERSHIP_COLUMNS, memberLines.join(''));
}

/**
 * Makes the staged listing one row per user: when paging showed a user twice,
 * the later sighting wins. Returns the number of distinct users staged.
 */
export async function finalizeStaging(s: Session): Promise<number> {
  const r = await s.query<{ total: number; distinct_ids: number }>(
    `SELECT count(*)::int AS total, count(DISTINCT tines_user_id)::int AS distinct_ids FROM ${STAGE_USERS}`,
  );
  const { total, distinct_ids } = r.rows[0]!;
  if (total !== distinct_ids) {
    await s.query(
      `DELETE FROM ${STAGE_USERS} a USING ${STAGE_USERS} b WHERE a.tines_user_id = b.tines_user_id AND a.seq < b.seq`,
    );
    await s.query(
      `DELETE FROM ${STAGE_MEMBERSHIPS} m WHERE NOT EXISTS (SELECT 1 FROM ${STAGE_USERS} u WHERE u.seq = m.seq)`,
    );
  }
  await s.exec(`CREATE UNIQUE INDEX ON ${STAGE_USERS} (tines_user_id); ANALYZE ${STAGE_USERS}; ANALYZE ${STAGE_MEMBERSHIPS}`);
  return distinct_ids;
}

export async function markConfirmedRemoved(s: Session, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await s.query(`INSERT INTO ${STAGE_REMOVED} (tines_user_id) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING`, [ids]);
}
