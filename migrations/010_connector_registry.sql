-- Connectors as data. Beside the environment's connector (source 'env', its key
-- in the environment), registered connectors (source 'registry') keep their
-- own tenant, their key sealed, and optionally their own schedule.
ALTER TABLE connectors
  ADD COLUMN source text NOT NULL DEFAULT 'env' CHECK (source IN ('env', 'registry')),
  -- AES-256-GCM: 12-byte nonce, ciphertext, 16-byte tag; the connector's id is the
  -- associated data, so a sealed key copied to another row does not open.
  ADD COLUMN sealed_api_key bytea,
  -- Names the master key that sealed it (a short hash of that key, never the key).
  ADD COLUMN sealed_key_id text,
  -- A cron expression; null: SYNC_SCHEDULE.
  ADD COLUMN schedule text,
  ADD CONSTRAINT connectors_registry_key_sealed
    CHECK (source = 'env' OR (sealed_api_key IS NOT NULL AND sealed_key_id IS NOT NULL)),
  ADD CONSTRAINT connectors_env_key_not_stored
    CHECK (source = 'registry' OR (sealed_api_key IS NULL AND sealed_key_id IS NULL));

-- A running daemon learns of a connector added, re-keyed, rescheduled or removed
-- within a moment (LISTEN tines_connector_registry); the payload is the id only.
-- Status, counters and sync times change on every sync and notify nothing.
CREATE FUNCTION tines_connector_registry_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tines_connector_registry', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER connectors_registry_changed
  AFTER INSERT OR DELETE OR UPDATE OF tenant_domain, source, sealed_api_key, sealed_key_id, schedule ON connectors
  FOR EACH ROW EXECUTE FUNCTION tines_connector_registry_changed();
