-- Model acquisition (hfops.models): evaluability facts per model, and folders registered with `hfops models add`.

CREATE TABLE model_evaluability (
    model_id TEXT PRIMARY KEY,
    task TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,                 -- packaged|local|cached|downloadable|api_only|too_large|pickle_only|gated|unsupported|unknown
    label TEXT NOT NULL,                 -- as shown: "downloadable (0.27 GB)", "too large (3.10 GB > 2 GB)", ...
    runnable INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER,                  -- bytes to download (downloadable, too_large) or on disk (local states)
    revision TEXT NOT NULL DEFAULT '',   -- commit sha, pypi:<dist>==<version>, or local:<sha256 prefix>
    format TEXT NOT NULL DEFAULT '',     -- safetensors | gguf | api | ''
    quantization TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',     -- why (refusal message, blocker, error)
    checked_at TEXT NOT NULL
);
CREATE INDEX model_evaluability_state ON model_evaluability(state);

CREATE TABLE local_models (
    model_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,                  -- absolute folder
    format TEXT NOT NULL,                -- safetensors | gguf
    quantization TEXT NOT NULL DEFAULT '',
    revision TEXT NOT NULL,              -- local:<first 12 hex of the sha256 over the weight hashes>
    size_bytes INTEGER NOT NULL,
    facts TEXT NOT NULL DEFAULT '{}',    -- JSON: config, license, pipeline_tag, library_name, files {name: sha256}
    added_at TEXT NOT NULL
);
