-- A connector's first sync finds the users who were there already: the
-- baseline, not joiners. Its user_added and membership_added events carry
-- "baseline": true in details (first_seen_at stays when the connector first
-- saw them), the connector records the baseline, and the views and `report`
-- count joiners from later syncs only.

-- 1. The baseline on the connector: the run that took it, when (its
--    transaction's time, which is its users' first_seen_at), and its size.
ALTER TABLE connectors
  ADD COLUMN baseline_run_id bigint,
  ADD COLUMN baseline_at timestamptz,
  ADD COLUMN baseline_users integer CHECK (baseline_users >= 0);

-- 2. Connectors synced before this migration: their first users are the baseline.
UPDATE connectors c
   SET baseline_at = b.at,
       baseline_users = b.users,
       baseline_run_id = (SELECT e.sync_run_id FROM change_events e
                           WHERE e.connector_id = c.id AND e.kind = 'user_added'
                           ORDER BY e.id LIMIT 1)
  FROM (SELECT connector_id, min(first_seen_at) AS at,
               count(*) FILTER (WHERE first_seen_at = (SELECT min(x.first_seen_at) FROM tines_users x
                                                         WHERE x.connector_id = u.connector_id))::int AS users
          FROM tines_users u GROUP BY connector_id) b
 WHERE b.connector_id = c.id;

UPDATE change_events e
   SET details = e.details || '{"baseline": true}'::jsonb
  FROM connectors c
 WHERE e.connector_id = c.id AND e.sync_run_id = c.baseline_run_id
   AND e.kind IN ('user_added', 'membership_added');

-- 3. present_users says whether the user is part of the baseline (appended
--    column: the views built on it stay as they are).
CREATE OR REPLACE VIEW present_users AS
SELECT u.connector_id, u.tines_user_id, u.email, u.first_name, u.last_name, u.admin, u.is_active,
       u.tenant_permissions, u.scim_uid, u.last_seen_at, u.first_seen_at, u.tines_created_at,
       COALESCE(m.team_count, 0) AS team_count,
       m.highest_team_role,
       COALESCE(u.first_seen_at <= c.baseline_at, false) AS baseline
  FROM tines_users u
  JOIN connectors c ON c.id = u.connector_id
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS team_count,
           (array_agg(t.role ORDER BY tines_role_rank(t.role) DESC, t.role))[1] AS highest_team_role
      FROM team_memberships t
     WHERE t.connector_id = u.connector_id AND t.tines_user_id = u.tines_user_id AND t.removed_at IS NULL
  ) m ON true
 WHERE u.removed_at IS NULL;

-- 4. recent_changes says whether the event is one of the baseline's arrivals
--    (appended column), so a reader of changes can leave them out.
CREATE OR REPLACE VIEW recent_changes AS
SELECT e.id, e.connector_id, e.occurred_at, e.kind, e.tines_user_id, e.email,
       u.first_name, u.last_name, e.team_id, e.details, e.sync_run_id,
       e.details @> '{"baseline": true}'::jsonb AS baseline
  FROM change_events e
  LEFT JOIN tines_users u ON u.connector_id = e.connector_id AND u.tines_user_id = e.tines_user_id
 WHERE e.occurred_at >= now() - interval '30 days'
 ORDER BY e.occurred_at DESC, e.id DESC;
