// Read models for `status`: each connector with its last run and user counts.
import type { Queryable } from './database.js';

export interface ConnectorStatusRow {
  name: string;
  tenant_domain: string;
  status: string;
  status_reason: string | null;
  status_changed_at: string;
  api_key_fingerprint: string | null;
  consecutive_failures: number;
  last_sync_at: string | null;
  last_success_at: string | null;
  /** The ORG_EMAIL_DOMAINS stored with the connector at its last registration; null: none, so external_users is empty for it. */
  org_email_domains: string[] | null;
  users_present: number;
  users_removed: number;
  admins_present: number;
  memberships_present: number;
  last_run: {
    id: number;
    trigger: string;
    status: string;
    started_at: string;
    finished_at: string | null;
    pages_fetched: number;
    pages_total: number | null;
    users_seen: number;
    error_kind: string | null;
    error_message: string | null;
    /** Which process ran it: the host name (a container's is its id or pod name) and pid. */
    host: string | null;
    pid: number | null;
    scheduled_for: string | null;
  } | null;
}

export async function connectorStatuses(db: Queryable): Promise<ConnectorStatusRow[]> {
  const r = await db.query<ConnectorStatusRow>(
    `SELECT c.name, c.tenant_domain, c.status, c.status_reason, c.status_changed_at, c.api_key_fingerprint,
            c.consecutive_failures, c.last_sync_at, c.last_success_at, c.org_email_domains,
            (SELECT count(*) FROM tines_users u WHERE u.connector_id = c.id AND u.removed_at IS NULL)::int AS users_present,
            (SELECT count(*) FROM tines_users u WHERE u.connector_id = c.id AND u.removed_at IS NOT NULL)::int AS users_removed,
            (SELECT count(*) FROM tines_users u WHERE u.connector_id = c.id AND u.removed_at IS NULL AND u.admin)::int AS admins_present,
            (SELECT count(*) FROM team_memberships m WHERE m.connector_id = c.id AND m.removed_at IS NULL)::int AS memberships_present,
            (SELECT to_jsonb(x) FROM (
               SELECT id, trigger, status, started_at, finished_at, pages_fetched, pages_total, users_seen, error_kind, error_message, host, pid, scheduled_for
                 FROM sync_runs r WHERE r.connector_id = c.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1) x) AS last_run
       FROM connectors c
      ORDER BY c.name`,
  );
  return r.rows;
}
