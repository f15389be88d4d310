-- RUNS_RETENTION_DAYS: old sync_runs are deleted by start time, across connectors.
CREATE INDEX sync_runs_started_idx ON sync_runs (started_at);
