-- Shadow evaluations: runs, per-example results, per-run metrics with CIs, and the inference cache.

CREATE TABLE eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER REFERENCES jobs(id),
    model_id TEXT NOT NULL,                        -- the candidate
    production_id TEXT NOT NULL,                   -- the production model of the task, or a baseline:<name>
    task TEXT NOT NULL,                            -- retrieval | qa
    dataset TEXT NOT NULL,                         -- squad_v2 | ms_marco
    dataset_source TEXT NOT NULL,                  -- local | hub
    dataset_version TEXT NOT NULL,                 -- content hash of the dataset file / Hub slice
    dataset_location TEXT,
    sample_limit INTEGER,                          -- --limit as asked (NULL = all)
    example_ids_hash TEXT,                         -- hash of the ids evaluated (same limit -> same ids)
    candidate_backend TEXT,
    candidate_revision TEXT,
    production_backend TEXT,
    production_revision TEXT,
    status TEXT NOT NULL DEFAULT 'queued',         -- queued | running | succeeded | failed
    total INTEGER,                                 -- examples in the run
    done INTEGER NOT NULL DEFAULT 0,               -- examples with a stored result
    candidate_errors INTEGER NOT NULL DEFAULT 0,
    production_errors INTEGER NOT NULL DEFAULT 0,
    primary_metric TEXT,
    candidate_score REAL,                          -- primary metric, candidate
    production_score REAL,                         -- primary metric, production
    delta REAL,                                    -- candidate - production on the primary metric
    delta_ci_low REAL,
    delta_ci_high REAL,
    recommendation TEXT,                           -- promote | keep shadowing | reject
    recommendation_reason TEXT,
    recommendation_rule TEXT,                      -- JSON: the rule and its parameters
    status_before TEXT,                            -- registry status of the candidate at start
    status_after TEXT,
    cache_hits INTEGER NOT NULL DEFAULT 0,
    cache_misses INTEGER NOT NULL DEFAULT 0,
    model_calls INTEGER NOT NULL DEFAULT 0,        -- inference calls actually made (0 on a cached re-run)
    params TEXT NOT NULL DEFAULT '{}',             -- JSON: the request as submitted
    message TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX eval_runs_status ON eval_runs(status, id);
CREATE INDEX eval_runs_model ON eval_runs(model_id, task, dataset, id);
CREATE INDEX eval_runs_version ON eval_runs(dataset, dataset_version);
CREATE INDEX eval_runs_job ON eval_runs(job_id);

CREATE TABLE eval_examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    example_id TEXT NOT NULL,
    position INTEGER NOT NULL,                     -- order within the run
    input TEXT NOT NULL,                           -- JSON: query (and context for qa)
    expected TEXT NOT NULL,                        -- JSON: gold answers / relevant ids
    candidate_output TEXT,                         -- JSON: answer text / top-10 ids
    production_output TEXT,
    candidate_scores TEXT NOT NULL DEFAULT '{}',   -- JSON {metric: value}
    production_scores TEXT NOT NULL DEFAULT '{}',
    candidate_primary REAL,                        -- per-example primary metric
    production_primary REAL,
    delta REAL,                                    -- candidate_primary - production_primary
    candidate_latency_ms REAL,
    production_latency_ms REAL,
    candidate_cached INTEGER NOT NULL DEFAULT 0,   -- 1 when the candidate output came from the cache
    production_cached INTEGER NOT NULL DEFAULT 0,
    candidate_error TEXT,
    production_error TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, example_id)
);
CREATE INDEX eval_examples_run ON eval_examples(run_id, position);

CREATE TABLE eval_metrics (
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    system TEXT NOT NULL,                          -- candidate | production | delta
    model_id TEXT NOT NULL,                        -- the system's model (for delta: the candidate)
    metric TEXT NOT NULL,
    value REAL,
    ci_low REAL,                                   -- bootstrap 95% interval
    ci_high REAL,
    n INTEGER NOT NULL,
    PRIMARY KEY (run_id, system, metric)
);
CREATE INDEX eval_metrics_model ON eval_metrics(model_id, metric);

CREATE TABLE inference_cache (
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    revision TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    kind TEXT NOT NULL,                            -- embedding (float32 bytes) | text (JSON string)
    value BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (backend, model, revision, input_hash)
) WITHOUT ROWID;
