// The insights summary per connector, from the views of 002_insights_views.sql
// (and 008's). Joiners are users added after the connector's first sync: the
// users that sync found are its baseline, counted apart.
import type { Queryable } from './database.js';

export interface ConnectorReport {
  name: string;
  tenant_domain: string;
  status: string;
  status_reason: string | null;
  last_success_at: string | null;
  users_present: number;
  /** Users the connector's first sync found (not joiners), and when; null before it. */
  baseline_users: number | null;
  baseline_at: string | null;
  joined_7d: number;
  joined_30d: number;
  left_7d: number;
  left_30d: number;
  inactive: number;
  inactive_after_days: number;
  never_seen: number;
  privileged: number;
  tenant_admins: number;
  team_admins: number;
  external: number | null;
  org_email_domains: string[] | null;
  recent_changes: { occurred_at: string; kind: string; email: string | null; name: string | null; details: Record<string, unknown> }[];
}

export async function connectorReports(db: Queryable): Promise<ConnectorReport[]> {
  const r = await db.query<ConnectorReport>(
    `SELECT c.name, c.tenant_domain, c.status, c.status_reason, c.last_success_at, c.inactive_after_days, c.org_email_domains,
            (SELECT count(*) FROM present_users p WHERE p.connector_id = c.id)::int AS users_present,
            c.baseline_users, c.baseline_at,
            (SELECT count(*) FROM change_events e WHERE e.connector_id = c.id AND e.kind IN ('user_added', 'user_restored')
                AND NOT e.details @> '{"baseline": true}' AND e.occurred_at >= now() - interval '7 days')::int AS joined_7d,
            (SELECT count(*) FROM change_events e WHERE e.connector_id = c.id AND e.kind IN ('user_added', 'user_restored')
                AND NOT e.details @> '{"baseline": true}' AND e.occurred_at >= now() - interval '30 days')::int AS joined_30d,
            (SELECT count(*) FROM change_events e WHERE e.connector_id = c.id AND e.kind = 'user_removed'
                AND e.occurred_at >= now() - interval '7 days')::int AS left_7d,
            (SELECT count(*) FROM change_events e WHERE e.connector_id = c.id AND e.kind = 'user_removed'
                AND e.occurred_at >= now() - interval '30 days')::int AS left_30d,
            (SELECT count(*) FROM inactive_users i WHERE i.connector_id = c.id)::int AS inactive,
            (SELECT count(*) FROM inactive_users i WHERE i.connector_id = c.id AND i.never_seen)::int AS never_seen,
            (SELECT count(*) FROM privileged_users p WHERE p.connector_id = c.id)::int AS privileged,
            (SELECT count(*) FROM privileged_users p WHERE p.connector_id = c.id AND p.admin)::int AS tenant_admins,
            (SELECT count(*) FROM privileged_users p WHERE p.connector_id = c.id AND p.admin_teams IS NOT NULL)::int AS team_admins,
            CASE WHEN c.org_email_domains IS NULL THEN NULL
                 ELSE (SELECT count(*) FROM external_users x WHERE x.connector_id = c.id)::int END AS external,
            COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'occurred_at', rc.occurred_at, 'kind', rc.kind, 'email', rc.email,
                        'name', NULLIF(trim(concat_ws(' ', rc.first_name, rc.last_name)), ''), 'details', rc.details))
                        FROM (SELECT * FROM recent_changes x WHERE x.connector_id = c.id AND NOT x.baseline
                               ORDER BY x.occurred_at DESC, x.id DESC LIMIT 5) rc), '[]'::jsonb) AS recent_changes
       FROM connectors c
      ORDER BY c.name`,
  );
  return r.rows;
}
