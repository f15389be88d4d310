-- A user object Tines sends again with its keys, its team_memberships or its
-- tenant_permissions in another order holds the same facts (jsonb already
-- ignores key order). The diff compares users through these canonical forms,
-- so such a resend writes no row and makes no event; the stored raw keeps the
-- order of the last answer that changed something.

-- The array's elements in jsonb's own order (a multiset's canonical form); anything else as it is.
CREATE FUNCTION tines_sorted_elements(a jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(a) = 'array'
                  THEN COALESCE((SELECT jsonb_agg(e ORDER BY e) FROM jsonb_array_elements(a) AS t(e)), '[]'::jsonb)
                  ELSE a END $$;

-- The user object with both arrays sorted.
CREATE FUNCTION tines_user_canonical(raw jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT raw
             || CASE WHEN jsonb_typeof(raw -> 'team_memberships') = 'array'
                     THEN jsonb_build_object('team_memberships', tines_sorted_elements(raw -> 'team_memberships'))
                     ELSE '{}'::jsonb END
             || CASE WHEN jsonb_typeof(raw -> 'tenant_permissions') = 'array'
                     THEN jsonb_build_object('tenant_permissions', tines_sorted_elements(raw -> 'tenant_permissions'))
                     ELSE '{}'::jsonb END $$;

-- A text array sorted (null stays null): tenant permissions are a set.
CREATE FUNCTION tines_sorted_text(a text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN a IS NULL THEN NULL ELSE ARRAY(SELECT x FROM unnest(a) AS t(x) ORDER BY x) END $$;
