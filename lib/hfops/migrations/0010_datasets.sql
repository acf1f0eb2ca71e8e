-- Custom eval sets (hfops dataset add): the validated examples and documents of each set, versioned by a
-- content hash. Runs on a custom set record its name in eval_runs.dataset and the version in dataset_version.

CREATE TABLE eval_datasets (
    name TEXT PRIMARY KEY,                         -- what --dataset names; never a built-in dataset's name
    task TEXT NOT NULL,                            -- qa | retrieval
    version TEXT NOT NULL,                         -- sha256 of task, examples and documents (canonical JSON)
    source TEXT NOT NULL,                          -- file | hub
    location TEXT NOT NULL,                        -- the file path as given, or hf://datasets/ORG/NAME (config) split[:N]
    mapping TEXT NOT NULL,                         -- JSON {field: column} as applied
    options TEXT NOT NULL DEFAULT '{}',            -- JSON: corpus file, limit, Hub repo/config/split, format
    examples INTEGER NOT NULL,
    documents INTEGER NOT NULL DEFAULT 0,
    unanswerable INTEGER NOT NULL DEFAULT 0,
    per_query INTEGER NOT NULL DEFAULT 0,          -- retrieval: 1 when each query ranks its own passages
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE eval_dataset_examples (
    dataset TEXT NOT NULL REFERENCES eval_datasets(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    example_id TEXT NOT NULL,
    example TEXT NOT NULL,                         -- JSON: id, query, context, answers, relevant, candidates
    PRIMARY KEY (dataset, position),
    UNIQUE (dataset, example_id)
);

CREATE TABLE eval_dataset_documents (
    dataset TEXT NOT NULL REFERENCES eval_datasets(name) ON DELETE CASCADE,
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (dataset, doc_id)
) WITHOUT ROWID;
