-- Waits for the Hub's rate-limit window taken during a sync run, on the run's own row (issue 14): each wait is
-- also a row of hub_ratelimit_waits with run_kind 'sync' and run_id the run's id.
ALTER TABLE sync_runs ADD COLUMN hub_waits INTEGER NOT NULL DEFAULT 0;         -- waits taken before a request
ALTER TABLE sync_runs ADD COLUMN hub_wait_seconds REAL NOT NULL DEFAULT 0;     -- their planned seconds, summed
