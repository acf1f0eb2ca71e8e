-- Core registry schema: Hub models, candidates, status audit trail, sync runs, jobs.

CREATE TABLE models (
    model_id TEXT PRIMARY KEY,
    author TEXT,
    sha TEXT,
    pipeline_tag TEXT,
    library_name TEXT,
    license TEXT,
    use_restricted INTEGER NOT NULL DEFAULT 0,   -- RAIL-family licence
    tags TEXT NOT NULL DEFAULT '[]',              -- JSON list
    siblings TEXT NOT NULL DEFAULT '[]',          -- JSON list of file names
    downloads INTEGER NOT NULL DEFAULT 0,
    downloads_all_time INTEGER,
    likes INTEGER NOT NULL DEFAULT 0,
    trending_score REAL,
    created_at TEXT,
    last_modified TEXT,
    gated TEXT,
    safetensors INTEGER NOT NULL DEFAULT 0,
    quantization TEXT NOT NULL DEFAULT '',        -- comma-separated facet, '' = none detected
    matches_rule INTEGER NOT NULL DEFAULT 0,
    rule_failures TEXT NOT NULL DEFAULT '[]',     -- JSON list of the rule clauses it fails
    raw TEXT NOT NULL,                            -- the API record as received
    record_hash TEXT NOT NULL,                    -- hash of the raw record
    rule_hash TEXT,                               -- fingerprint of the rule it was judged by
    source TEXT NOT NULL,                         -- endpoint URL or snapshot path
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_sync_id INTEGER
);
CREATE INDEX models_pipeline_tag ON models(pipeline_tag);
CREATE INDEX models_license ON models(license);
CREATE INDEX models_library ON models(library_name);
CREATE INDEX models_matches ON models(matches_rule);

CREATE TABLE candidates (
    model_id TEXT PRIMARY KEY REFERENCES models(model_id),
    status TEXT NOT NULL DEFAULT 'candidate',
    score REAL NOT NULL DEFAULT 0,
    score_breakdown TEXT NOT NULL DEFAULT '{}',   -- JSON {term: contribution}
    flag TEXT,                                    -- e.g. 'no longer matches the rule: licence'
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX candidates_status ON candidates(status);
CREATE INDEX candidates_score ON candidates(score DESC);

CREATE TABLE status_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL REFERENCES models(model_id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT                                  -- link to the evidence, e.g. 'eval_run:12' or 'sync_run:3'
);
CREATE INDEX status_transitions_model ON status_transitions(model_id, id);

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'full',             -- full | incremental
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',        -- running | succeeded | failed | interrupted
    pages INTEGER NOT NULL DEFAULT 0,
    seen INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    matched INTEGER NOT NULL DEFAULT 0,
    new_candidates INTEGER NOT NULL DEFAULT 0,
    flagged INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    retry_wait_seconds REAL NOT NULL DEFAULT 0,
    skip_reasons TEXT NOT NULL DEFAULT '{}',       -- JSON {reason: count}
    errors TEXT NOT NULL DEFAULT '[]',             -- JSON list of messages
    resume_cursor TEXT,                            -- state needed to resume an interrupted sync
    message TEXT
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'queued',         -- queued | running | succeeded | failed
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    message TEXT,
    error TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    heartbeat_at TEXT
);
CREATE INDEX jobs_status ON jobs(status, id);
