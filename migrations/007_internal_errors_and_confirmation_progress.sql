-- 1. An error the connector did not foresee (a TypeError, a broken invariant)
--    is an `internal` error, not blamed on the database.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_error_kind_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_error_kind_check
  CHECK (error_kind IN ('auth', 'rate_limited', 'network', 'server', 'invalid_response',
                        'inconsistent_listing', 'removal_guard', 'database', 'shutdown', 'internal'));

-- 2. The removal confirmations' progress while they run, as pages_fetched and
--    pages_total are the listing's: users confirmed with Tines so far, of how
--    many missing from the listing. Null while the run has not reached them
--    (or needed none).
ALTER TABLE sync_runs
  ADD COLUMN confirmations_done integer CHECK (confirmations_done >= 0),
  ADD COLUMN confirmations_total integer CHECK (confirmations_total >= 0);
