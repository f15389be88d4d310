-- The connector's tables. Every row that belongs to a connector goes with it
-- (ON DELETE CASCADE), so `delete --yes` is one statement.

CREATE TABLE connectors (
  id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                    text NOT NULL UNIQUE,
  tenant_domain           text NOT NULL,
  status                  text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'reconnect_required', 'failing')),
  status_reason           text,
  status_changed_at       timestamptz NOT NULL DEFAULT now(),
  -- One-way: 'sha256:' and the first 16 hex digits of the key's SHA-256. Never the key.
  api_key_fingerprint     text,
  -- The fingerprint Tines refused; while it equals api_key_fingerprint no sync calls Tines.
  refused_key_fingerprint text,
  consecutive_failures    integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  last_sync_at            timestamptz,
  last_success_at         timestamptz,
  inactive_after_days     integer NOT NULL DEFAULT 90 CHECK (inactive_after_days > 0),
  org_email_domains       text[],
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tines_users (
  connector_id        bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
  tines_user_id       bigint NOT NULL,
  email               text,
  first_name          text,
  last_name           text,
  admin               boolean,
  is_active           boolean,
  tenant_permissions  text[],
  scim_uid            text,
  tines_created_at    timestamptz,
  tines_updated_at    timestamptz,
  last_seen_at        timestamptz,
  first_seen_at       timestamptz NOT NULL DEFAULT now(),
  removed_at          timestamptz,
  raw                 jsonb NOT NULL,
  -- When this row last changed on our side (not Tines' updated_at).
  row_updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (connector_id, tines_user_id)
);
CREATE INDEX tines_users_email_idx ON tines_users (connector_id, lower(email));
CREATE INDEX tines_users_first_seen_idx ON tines_users (connector_id, first_seen_at);
CREATE INDEX tines_users_removed_idx ON tines_users (connector_id, removed_at) WHERE removed_at IS NOT NULL;
CREATE INDEX tines_users_last_seen_idx ON tines_users (connector_id, last_seen_at) WHERE removed_at IS NULL;

-- The app associations: which user reaches which Tines team, with which role.
-- It cascades from the connector through tines_users; a second, direct foreign
-- key would only add a check per inserted row.
CREATE TABLE team_memberships (
  connector_id    bigint NOT NULL,
  tines_user_id   bigint NOT NULL,
  team_id         bigint NOT NULL,
  team_name       text,
  role            text,
  first_seen_at   timestamptz NOT NULL DEFAULT now(),
  removed_at      timestamptz,
  row_updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (connector_id, tines_user_id, team_id),
  FOREIGN KEY (connector_id, tines_user_id) REFERENCES tines_users (connector_id, tines_user_id) ON DELETE CASCADE
);
CREATE INDEX team_memberships_team_idx ON team_memberships (connector_id, team_id) WHERE removed_at IS NULL;
CREATE INDEX team_memberships_role_idx ON team_memberships (connector_id, role) WHERE removed_at IS NULL;

CREATE TABLE sync_runs (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  connector_id         bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
  trigger              text NOT NULL CHECK (trigger IN ('start', 'schedule', 'manual')),
  status               text NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'succeeded', 'held', 'failed', 'aborted')),
  started_at           timestamptz NOT NULL DEFAULT now(),
  finished_at          timestamptz,
  pages_fetched        integer NOT NULL DEFAULT 0,
  pages_total          integer,
  users_seen           integer NOT NULL DEFAULT 0,
  users_added          integer NOT NULL DEFAULT 0,
  users_updated        integer NOT NULL DEFAULT 0,
  users_removed        integer NOT NULL DEFAULT 0,
  users_restored       integer NOT NULL DEFAULT 0,
  memberships_added    integer NOT NULL DEFAULT 0,
  memberships_updated  integer NOT NULL DEFAULT 0,
  memberships_removed  integer NOT NULL DEFAULT 0,
  -- Users missing from the listing, and how many of them Tines confirmed gone (404).
  removal_candidates   integer NOT NULL DEFAULT 0,
  confirm_calls        integer NOT NULL DEFAULT 0,
  error_kind           text CHECK (error_kind IN ('auth', 'rate_limited', 'network', 'server', 'invalid_response',
                                                  'inconsistent_listing', 'removal_guard', 'database', 'shutdown')),
  error_message        text,
  host                 text,
  pid                  integer,
  CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX sync_runs_connector_idx ON sync_runs (connector_id, started_at DESC);
-- Belt and braces for single flight: at most one running sync per connector.
CREATE UNIQUE INDEX sync_runs_one_running_idx ON sync_runs (connector_id) WHERE status = 'running';

-- sync_run_id names the run that wrote the event (null for changes made outside
-- a run, such as `reconnect`). It has no foreign key: runs are only ever deleted
-- with their connector, which takes the events along, and a check per event
-- would cost the first sync of a large tenant dearly.
CREATE TABLE change_events (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  connector_id   bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
  sync_run_id    bigint,
  occurred_at    timestamptz NOT NULL DEFAULT now(),
  kind           text NOT NULL CHECK (kind IN ('user_added', 'user_updated', 'user_removed', 'user_restored',
                                               'membership_added', 'membership_updated', 'membership_removed',
                                               'connector_status_changed')),
  tines_user_id  bigint,
  email          text,
  team_id        bigint,
  details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX change_events_connector_time_idx ON change_events (connector_id, occurred_at DESC);
CREATE INDEX change_events_user_idx ON change_events (connector_id, tines_user_id);
CREATE INDEX change_events_run_idx ON change_events (sync_run_id);
