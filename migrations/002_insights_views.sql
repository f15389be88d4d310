-- Views that answer what a SaaS-management user asks: who has an account,
-- who is idle, who holds power, who is outside the company, what changed.
-- Each has connector_id, tines_user_id and email.

-- A role's rank, so "highest role" has a meaning; custom roles rank below VIEWER.
CREATE FUNCTION tines_role_rank(role text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE upper(role) WHEN 'TEAM_ADMIN' THEN 3 WHEN 'EDITOR' THEN 2 WHEN 'VIEWER' THEN 1 ELSE 0 END $$;

CREATE VIEW present_users AS
SELECT u.connector_id, u.tines_user_id, u.email, u.first_name, u.last_name, u.admin, u.is_active,
       u.tenant_permissions, u.scim_uid, u.last_seen_at, u.first_seen_at, u.tines_created_at,
       COALESCE(m.team_count, 0) AS team_count,
       m.highest_team_role
  FROM tines_users u
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS team_count,
           (array_agg(t.role ORDER BY tines_role_rank(t.role) DESC, t.role))[1] AS highest_team_role
      FROM team_memberships t
     WHERE t.connector_id = u.connector_id AND t.tines_user_id = u.tines_user_id AND t.removed_at IS NULL
  ) m ON true
 WHERE u.removed_at IS NULL;

CREATE VIEW inactive_users AS
SELECT p.connector_id, p.tines_user_id, p.email, p.first_name, p.last_name, p.admin, p.last_seen_at,
       p.first_seen_at,
       (p.last_seen_at IS NULL) AS never_seen,
       floor(extract(epoch FROM now() - p.last_seen_at) / 86400)::int AS days_since_last_seen,
       c.inactive_after_days
  FROM present_users p
  JOIN connectors c ON c.id = p.connector_id
 WHERE p.is_active IS NOT FALSE
   AND (p.last_seen_at IS NULL OR p.last_seen_at < now() - make_interval(days => c.inactive_after_days));

CREATE VIEW privileged_users AS
SELECT p.connector_id, p.tines_user_id, p.email, p.first_name, p.last_name, p.admin, p.tenant_permissions,
       ta.admin_teams,
       array_remove(ARRAY[
         CASE WHEN p.admin THEN 'tenant admin' END,
         CASE WHEN cardinality(p.tenant_permissions) > 0
              THEN 'tenant permissions: ' || array_to_string(p.tenant_permissions, ', ') END,
         CASE WHEN ta.admin_teams IS NOT NULL
              THEN 'team admin of: ' || array_to_string(ta.admin_teams, ', ') END
       ], NULL) AS reasons
  FROM present_users p
  LEFT JOIN LATERAL (
    SELECT array_agg(COALESCE(t.team_name, t.team_id::text) ORDER BY t.team_name) AS admin_teams
      FROM team_memberships t
     WHERE t.connector_id = p.connector_id AND t.tines_user_id = p.tines_user_id
       AND t.removed_at IS NULL AND upper(t.role) = 'TEAM_ADMIN'
  ) ta ON true
 WHERE p.admin OR cardinality(p.tenant_permissions) > 0 OR ta.admin_teams IS NOT NULL;

-- Empty while the connector has no ORG_EMAIL_DOMAINS; subdomains count as inside.
CREATE VIEW external_users AS
SELECT p.connector_id, p.tines_user_id, p.email, p.first_name, p.last_name, p.admin, p.last_seen_at,
       lower(split_part(p.email, '@', 2)) AS email_domain
  FROM present_users p
  JOIN connectors c ON c.id = p.connector_id
 WHERE c.org_email_domains IS NOT NULL
   AND p.email LIKE '%@%'
   AND NOT EXISTS (
     SELECT 1 FROM unnest(c.org_email_domains) d
      WHERE lower(split_part(p.email, '@', 2)) = d
         OR lower(split_part(p.email, '@', 2)) LIKE '%.' || d
   );

CREATE VIEW recent_changes AS
SELECT e.id, e.connector_id, e.occurred_at, e.kind, e.tines_user_id, e.email,
       u.first_name, u.last_name, e.team_id, e.details, e.sync_run_id
  FROM change_events e
  LEFT JOIN tines_users u ON u.connector_id = e.connector_id AND u.tines_user_id = e.tines_user_id
 WHERE e.occurred_at >= now() - interval '30 days'
 ORDER BY e.occurred_at DESC, e.id DESC;
