// The owners part of `report`, per connector, from the views of 009_people.sql:
// orphaned accounts (privileged ones first), unowned accounts, and counts.
import type { Queryable } from './database.js';

/** Accounts listed per kind and connector; the counts are always complete, the views have every row. */
export const OWNER_LIST_LIMIT = 100;

export interface OrphanedAccount {
  email: string | null;
  name: string | null;
  person_name: string | null;
  person_status: 'suspended' | 'departed';
  person_status_changed_at: string;
  days_since_departure: number;
  privileged: boolean;
  /** Why the account is privileged (privileged_users.reasons), or null. */
  reasons: string[] | null;
}

export interface UnownedAccount {
  email: string | null;
  name: string | null;
  admin: boolean | null;
  last_seen_at: string | null;
}

export interface OwnersReport {
  /** People in the directory (org-wide); 0 means no directory was loaded and owners are unknown. */
  directory_people: number;
  orphaned: number;
  privileged_orphans: number;
  unowned: number;
  /** Privileged orphans first (tenant admins before the others), then the longest gone. */
  orphaned_accounts: OrphanedAccount[];
  unowned_accounts: UnownedAccount[];
}

/** The owners report of every connector, by connector name. */
export async function ownerReports(db: Queryable): Promise<Map<string, OwnersReport>> {
  const r = await db.query<OwnersReport & { name: string }>(
    `SELECT c.name,
            (SELECT count(*) FROM people)::int AS directory_people,
            (SELECT count(*) FROM orphaned_accounts o WHERE o.connector_id = c.id)::int AS orphaned,
            (SELECT count(*) FROM privileged_orphans o WHERE o.connector_id = c.id)::int AS privileged_orphans,
            (SELECT count(*) FROM unowned_accounts u WHERE u.connector_id = c.id)::int AS unowned,
            COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'email', x.email, 'name', x.name, 'person_name', x.person_name, 'person_status', x.person_status,
                        'person_status_changed_at', x.person_status_changed_at, 'days_since_departure', x.days_since_departure,
                        'privileged', x.reasons IS NOT NULL, 'reasons', x.reasons) ORDER BY x.ord)
                        FROM (SELECT o.*, NULLIF(trim(concat_ws(' ', o.first_name, o.last_name)), '') AS name, p.reasons,
                                     row_number() OVER (ORDER BY p.reasons IS NULL, o.admin IS NOT TRUE, o.days_since_departure DESC, o.email) AS ord
                                FROM orphaned_accounts o
                                LEFT JOIN privileged_orphans p ON p.connector_id = o.connector_id AND p.tines_user_id = o.tines_user_id
                               WHERE o.connector_id = c.id
                               ORDER BY ord LIMIT ${OWNER_LIST_LIMIT}) x), '[]'::jsonb) AS orphaned_accounts,
            COALESCE((SELECT jsonb_agg(jsonb_build_object('email', x.email, 'name', x.name, 'admin', x.admin, 'last_seen_at', x.last_seen_at) ORDER BY x.email)
                        FROM (SELECT u.email, NULLIF(trim(concat_ws(' ', u.first_name, u.last_name)), '') AS name, u.admin, u.last_seen_at
                                FROM unowned_accounts u WHERE u.connector_id = c.id
                               ORDER BY u.email LIMIT ${OWNER_LIST_LIMIT}) x), '[]'::jsonb) AS unowned_accounts
       FROM connectors c
      ORDER BY c.name`,
  );
  return new Map(r.rows.map(({ name, ...report }) => [name, report]));
}
