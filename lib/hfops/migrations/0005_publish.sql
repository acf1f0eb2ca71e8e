-- Publishing eval reports and model cards to the Hub: one row per attempt, linked to its eval run.
-- The write token is never stored; error messages are scrubbed of it before they are written.

CREATE TABLE eval_publications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    repo_id TEXT NOT NULL,                         -- ORG/NAME ('' when none was given to a dry run)
    endpoint TEXT NOT NULL,                        -- the Hub endpoint ([hub] endpoint)
    mode TEXT NOT NULL,                            -- push | dry-run
    dry_run_reason TEXT,                           -- why nothing was pushed: 'no token' | '--dry-run'
    status TEXT NOT NULL DEFAULT 'running',        -- running | succeeded | failed
    files TEXT NOT NULL DEFAULT '[]',              -- JSON [{path, bytes, sha256}]
    out_dir TEXT,                                  -- local copy of the files
    commit_url TEXT,                               -- the Hub commit (push only)
    commit_oid TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX eval_publications_run ON eval_publications(run_id, id);
