-- Starter shadow runs queued by `hfops init` on a fresh store (hfops.evals.starter): one row per starter,
-- inserted before its run is submitted, so a starter is queued at most once per store.
CREATE TABLE starter_runs (
    name TEXT PRIMARY KEY,                 -- e.g. retrieval:squad_v2:sentence-transformers/all-MiniLM-L6-v2
    run_id INTEGER REFERENCES eval_runs(id),
    job_id INTEGER REFERENCES jobs(id),
    note TEXT,                             -- why it was not queued (the model cannot run here), else NULL
    queued_at TEXT NOT NULL
);
