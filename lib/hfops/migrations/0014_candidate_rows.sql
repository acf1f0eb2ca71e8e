-- Narrow copies of the registry for the Candidates page (issue 17: filter 100k candidates as fast as 100).
-- `models` rows are wide (the raw record, tags, file list): scanning or sorting them for a page of 50 cost
-- 0.2-0.6 s at 100,000 candidates. Triggers keep these tables equal to `candidates` JOIN `models` and to
-- `models`' ids, whoever writes (sync, status changes, tests); nothing writes them directly.

-- One row per candidate: its state and the model facts the table filters and sorts on.
CREATE TABLE candidate_rows (
    model_id TEXT PRIMARY KEY,
    score REAL NOT NULL,
    status TEXT NOT NULL,
    flag TEXT,
    pipeline_tag TEXT,
    license TEXT,
    library_name TEXT,
    quantization TEXT NOT NULL DEFAULT '',
    downloads INTEGER NOT NULL DEFAULT 0,
    likes INTEGER NOT NULL DEFAULT 0,
    last_modified TEXT,
    created_at TEXT,
    use_restricted INTEGER NOT NULL DEFAULT 0,
    safetensors INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO candidate_rows
SELECT c.model_id, c.score, c.status, c.flag, m.pipeline_tag, m.license, m.library_name, m.quantization,
       m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors
FROM candidates c JOIN models m ON m.model_id = c.model_id;

-- The default order (score) and the common sorts page without sorting the table.
CREATE INDEX candidate_rows_score ON candidate_rows(score, model_id);
CREATE INDEX candidate_rows_downloads ON candidate_rows(downloads, model_id);

-- Every synced model's id as the search matches it: lower case without the separators - _ . / space :
-- (hfops.views.candidates.search_key), with the downloads the search orders by.
CREATE TABLE model_search (
    model_id TEXT PRIMARY KEY,
    search_key TEXT NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO model_search
SELECT model_id,
       replace(replace(replace(replace(replace(replace(lower(model_id), '-', ''), '_', ''), '.', ''), '/', ''),
               ' ', ''), ':', ''),
       downloads
FROM models;

CREATE TRIGGER candidate_rows_candidate_insert AFTER INSERT ON candidates BEGIN
    INSERT OR REPLACE INTO candidate_rows
    SELECT NEW.model_id, NEW.score, NEW.status, NEW.flag, m.pipeline_tag, m.license, m.library_name,
           m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors
    FROM models m WHERE m.model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_update AFTER UPDATE OF score, status, flag ON candidates BEGIN
    UPDATE candidate_rows SET score = NEW.score, status = NEW.status, flag = NEW.flag
    WHERE model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_rename AFTER UPDATE OF model_id ON candidates BEGIN
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
    INSERT OR REPLACE INTO candidate_rows
    SELECT NEW.model_id, NEW.score, NEW.status, NEW.flag, m.pipeline_tag, m.license, m.library_name,
           m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors
    FROM models m WHERE m.model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_delete AFTER DELETE ON candidates BEGIN
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
END;

CREATE TRIGGER registry_rows_model_insert AFTER INSERT ON models BEGIN
    INSERT OR REPLACE INTO model_search VALUES (
        NEW.model_id,
        replace(replace(replace(replace(replace(replace(lower(NEW.model_id), '-', ''), '_', ''), '.', ''), '/', ''),
                ' ', ''), ':', ''),
        NEW.downloads);
    INSERT OR REPLACE INTO candidate_rows
    SELECT c.model_id, c.score, c.status, c.flag, NEW.pipeline_tag, NEW.license, NEW.library_name,
           NEW.quantization, NEW.downloads, NEW.likes, NEW.last_modified, NEW.created_at, NEW.use_restricted,
           NEW.safetensors
    FROM candidates c WHERE c.model_id = NEW.model_id;
END;

CREATE TRIGGER registry_rows_model_update AFTER UPDATE OF pipeline_tag, license, library_name, quantization,
    downloads, likes, last_modified, created_at, use_restricted, safetensors ON models BEGIN
    UPDATE model_search SET downloads = NEW.downloads WHERE model_id = NEW.model_id;
    UPDATE candidate_rows SET pipeline_tag = NEW.pipeline_tag, license = NEW.license,
        library_name = NEW.library_name, quantization = NEW.quantization, downloads = NEW.downloads,
        likes = NEW.likes, last_modified = NEW.last_modified, created_at = NEW.created_at,
        use_restricted = NEW.use_restricted, safetensors = NEW.safetensors
    WHERE model_id = NEW.model_id;
END;

CREATE TRIGGER registry_rows_model_rename AFTER UPDATE OF model_id ON models BEGIN
    DELETE FROM model_search WHERE model_id = OLD.model_id;
    INSERT OR REPLACE INTO model_search VALUES (
        NEW.model_id,
        replace(replace(replace(replace(replace(replace(lower(NEW.model_id), '-', ''), '_', ''), '.', ''), '/', ''),
                ' ', ''), ':', ''),
        NEW.downloads);
END;

CREATE TRIGGER registry_rows_model_delete AFTER DELETE ON models BEGIN
    DELETE FROM model_search WHERE model_id = OLD.model_id;
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
END;
