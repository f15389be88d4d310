-- Owners: the organisation's directory as the operator loads it (`people
-- import`, or SQL), org-wide, and the views that put a person behind each
-- Tines account. Matching is by normalised email: trimmed, case-insensitive,
-- through email_aliases where an operator mapped one address to another.

CREATE TABLE people (
  email              text NOT NULL CHECK (btrim(email) <> ''),
  -- The matching key; unique, so two spellings of one address are one person.
  email_key          text GENERATED ALWAYS AS (lower(btrim(email))) STORED,
  name               text,
  status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'departed')),
  status_changed_at  timestamptz NOT NULL DEFAULT now(),
  department         text,
  manager_email      text,
  external_id        text,
  -- The import that owns the row (`people import --source`); null for rows written with SQL.
  source             text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_email_key_idx ON people (email_key);
CREATE INDEX people_source_idx ON people (source, status);

-- Another address of a person: a Tines account under alias_email belongs to
-- the person whose email is person_email (plus-addressing, a renamed mailbox,
-- an old domain). An alias wins over a person of the alias's own address.
CREATE TABLE email_aliases (
  alias_email   text NOT NULL CHECK (btrim(alias_email) <> ''),
  alias_key     text GENERATED ALWAYS AS (lower(btrim(alias_email))) STORED,
  person_email  text NOT NULL CHECK (btrim(person_email) <> ''),
  person_key    text GENERATED ALWAYS AS (lower(btrim(person_email))) STORED,
  note          text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX email_aliases_alias_key_idx ON email_aliases (alias_key);

-- Each present Tines user with its person, or none (person_* null).
CREATE VIEW account_owners AS
SELECT u.connector_id, u.tines_user_id, u.email, u.first_name, u.last_name, u.admin, u.is_active,
       u.tenant_permissions, u.last_seen_at, u.first_seen_at, u.team_count, u.highest_team_role,
       o.email AS person_email, o.name AS person_name, o.status AS person_status,
       o.status_changed_at AS person_status_changed_at, o.department, o.manager_email, o.external_id,
       o.source AS person_source, o.matched_by
  FROM present_users u
  LEFT JOIN LATERAL (
    SELECT m.* FROM (
      SELECT p.email, p.name, p.status, p.status_changed_at, p.department, p.manager_email, p.external_id, p.source,
             'alias'::text AS matched_by, 1 AS pref
        FROM email_aliases a JOIN people p ON p.email_key = a.person_key
       WHERE a.alias_key = lower(btrim(u.email))
      UNION ALL
      SELECT p.email, p.name, p.status, p.status_changed_at, p.department, p.manager_email, p.external_id, p.source,
             'email'::text, 2
        FROM people p
       WHERE p.email_key = lower(btrim(u.email))
    ) m ORDER BY m.pref LIMIT 1
  ) o ON true;

-- Present, not deactivated accounts whose person is suspended or departed.
CREATE VIEW orphaned_accounts AS
SELECT o.connector_id, o.tines_user_id, o.email, o.first_name, o.last_name, o.admin, o.last_seen_at,
       o.person_email, o.person_name, o.person_status, o.person_status_changed_at, o.department, o.manager_email,
       floor(extract(epoch FROM now() - o.person_status_changed_at) / 86400)::int AS days_since_departure,
       o.matched_by
  FROM account_owners o
 WHERE o.person_status IN ('suspended', 'departed')
   AND o.is_active IS NOT FALSE;

-- Present accounts no person stands behind, apart from external_users (outsiders have no person by design).
CREATE VIEW unowned_accounts AS
SELECT o.connector_id, o.tines_user_id, o.email, o.first_name, o.last_name, o.admin, o.is_active,
       o.last_seen_at, o.first_seen_at
  FROM account_owners o
 WHERE o.person_email IS NULL
   AND NOT EXISTS (SELECT 1 FROM external_users x WHERE x.connector_id = o.connector_id AND x.tines_user_id = o.tines_user_id);

-- Orphaned accounts that hold power: tenant admins, holders of tenant permissions, team admins.
CREATE VIEW privileged_orphans AS
SELECT o.connector_id, o.tines_user_id, o.email, o.first_name, o.last_name, o.admin, p.tenant_permissions,
       p.admin_teams, p.reasons, o.last_seen_at, o.person_email, o.person_name, o.person_status,
       o.person_status_changed_at, o.days_since_departure, o.department, o.manager_email
  FROM orphaned_accounts o
  JOIN privileged_users p ON p.connector_id = o.connector_id AND p.tines_user_id = o.tines_user_id;
