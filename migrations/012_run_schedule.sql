-- A fleet: when each run was due (its schedule's slot plus the connector's
-- spread offset), so lateness and missed or doubled slots are plain SQL:
-- started_at - scheduled_for is how late it began. Null for runs nobody
-- scheduled (a manual `sync`, the admin API's sync).
ALTER TABLE sync_runs ADD COLUMN scheduled_for timestamptz;
CREATE INDEX sync_runs_scheduled_idx ON sync_runs (connector_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
