-- The free-tier ledger (hfops.ledger): the Hub's rate-limit windows as its responses announce them, the waits
-- taken to respect them, and a monthly account of Inference API use. Never a token or a message body.

-- One row per rate-limit bucket of a Hub origin (resource type as the server names it: api, resolvers, pages).
CREATE TABLE hub_ratelimit_buckets (
    origin TEXT NOT NULL,               -- scheme://host[:port] of the server that sent the headers
    resource TEXT NOT NULL,             -- "api" in RateLimit: "api";r=12;t=55
    remaining INTEGER NOT NULL,         -- r: requests left in the window (the lowest seen in this window)
    quota INTEGER,                      -- q of RateLimit-Policy (NULL when the server sent no policy)
    window_seconds INTEGER,             -- w of RateLimit-Policy
    reset_at REAL NOT NULL,             -- Unix time the window resets (observed time + t)
    observed_at REAL NOT NULL,          -- Unix time of the latest response drawing on this bucket
    responses INTEGER NOT NULL DEFAULT 0,  -- responses recorded (all windows)
    PRIMARY KEY (origin, resource)
);

-- Which bucket a kind of request draws on (route = our classification of the path: api, resolvers, pages).
CREATE TABLE hub_ratelimit_routes (
    origin TEXT NOT NULL,
    route TEXT NOT NULL,
    resource TEXT NOT NULL,
    PRIMARY KEY (origin, route)
);

-- One row per wait taken before a request instead of spending the reserve of a window.
CREATE TABLE hub_ratelimit_waits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    resource TEXT NOT NULL,
    seconds REAL NOT NULL,              -- the planned sleep: until the announced reset, plus a margin
    remaining INTEGER NOT NULL,
    quota INTEGER,
    reserve INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    started_epoch REAL NOT NULL,
    run_kind TEXT,                      -- the run that waited, when known (sync, eval_run, job...)
    run_id TEXT,
    pid INTEGER NOT NULL
);
CREATE INDEX hub_ratelimit_waits_run ON hub_ratelimit_waits (run_kind, run_id);

-- Inference API use per UTC month, base URL, model and outcome (ok or a failure kind).
CREATE TABLE inference_usage (
    month TEXT NOT NULL,                -- YYYY-MM (UTC)
    base_url TEXT NOT NULL,             -- without credentials or query
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,              -- ok | rate_limited | credits_exhausted | server_error | client_error | timeout | connection_error
    requests INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (month, base_url, model, outcome)
);

-- A month closed for Inference (a 402: credits exhausted); reopened by an operator or by the next month.
CREATE TABLE inference_closures (
    month TEXT PRIMARY KEY,
    reason TEXT NOT NULL,               -- credits_exhausted
    status_code INTEGER,
    base_url TEXT,
    closed_at TEXT NOT NULL,
    reopened_at TEXT
);
