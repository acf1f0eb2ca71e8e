-- Refinement router: one row per refine call (history, metrics) and the shared HF cooldown.
-- Queries are stored as a hash only; tokens are never stored.

CREATE TABLE refine_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,                    -- ISO-8601 UTC ...Z
    query_hash TEXT NOT NULL,                    -- sha256 of the query text (never the text itself)
    query_chars INTEGER NOT NULL,
    source TEXT NOT NULL,                        -- local | hf (who produced the returned result)
    model TEXT NOT NULL,                         -- model that produced the returned result
    intent TEXT,
    confidence REAL,
    outcome TEXT NOT NULL,                       -- HF request outcome: skipped (no request sent) | ok | timeout |
                                                 -- rate_limited (429) | credits_exhausted (402) | http_error | invalid_output
    bypass_reason TEXT,                          -- NULL | no_key | rate_limited | cooldown | timeout | http_error |
                                                 -- credits_exhausted | invalid_output | disabled
    hf_requested INTEGER NOT NULL DEFAULT 0,     -- 1 when a request was sent to the inference server
    hf_model TEXT,                               -- model asked when a request was sent
    status_code INTEGER,                         -- HTTP status of the HF answer, if any
    latency_ms REAL NOT NULL,                    -- end to end, local work included
    local_latency_ms REAL,
    hf_latency_ms REAL,                          -- time spent waiting for the HF attempt (to the answer or the deadline)
    budget_ms INTEGER NOT NULL,
    within_budget INTEGER NOT NULL,
    caller TEXT NOT NULL DEFAULT 'library',      -- library | cli | api | console | bench
    error TEXT                                   -- short, sanitised error class/message of the HF attempt
);
CREATE INDEX refine_calls_created ON refine_calls(created_at);
CREATE INDEX refine_calls_source ON refine_calls(source, created_at);
CREATE INDEX refine_calls_outcome ON refine_calls(outcome, created_at);

CREATE TABLE refine_cooldowns (
    scope TEXT PRIMARY KEY,                      -- 'hf-inference'
    reason TEXT NOT NULL,                        -- rate_limited | credits_exhausted
    until_epoch REAL NOT NULL,                   -- unix seconds; the cooldown is active while now < until_epoch
    until_at TEXT NOT NULL,                      -- the same instant, ISO-8601 UTC ...Z
    status_code INTEGER,
    retry_after TEXT,                            -- the Retry-After header as received, if any
    opened_at TEXT NOT NULL
);
