-- A sync writes thousands of `models` / `candidates` rows per page; 0014's per-row triggers kept
-- `candidate_rows` and `model_search` at a third of its CPU (issue 17). The triggers stay, for every other
-- writer (status changes, `hfops models add`, tests' row helpers), but step aside while this connection's
-- open transaction holds a row in `registry_rows_deferred`: the sync inserts one before writing a page and,
-- in the same transaction, deletes it and refreshes the two tables for the page's ids in two set-based
-- statements (hfops.registry.refresh_registry_rows). Other connections never see the row: it is deleted
-- before the commit, and a rolled-back transaction takes it away too.

CREATE TABLE registry_rows_deferred (
    id INTEGER PRIMARY KEY
);

DROP TRIGGER candidate_rows_candidate_insert;
DROP TRIGGER candidate_rows_candidate_update;
DROP TRIGGER candidate_rows_candidate_rename;
DROP TRIGGER candidate_rows_candidate_delete;
DROP TRIGGER registry_rows_model_insert;
DROP TRIGGER registry_rows_model_update;
DROP TRIGGER registry_rows_model_rename;
DROP TRIGGER registry_rows_model_delete;

CREATE TRIGGER candidate_rows_candidate_insert AFTER INSERT ON candidates
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    INSERT OR REPLACE INTO candidate_rows
    SELECT NEW.model_id, NEW.score, NEW.status, NEW.flag, m.pipeline_tag, m.license, m.library_name,
           m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors
    FROM models m WHERE m.model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_update AFTER UPDATE OF score, status, flag ON candidates
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    UPDATE candidate_rows SET score = NEW.score, status = NEW.status, flag = NEW.flag
    WHERE model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_rename AFTER UPDATE OF model_id ON candidates
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
    INSERT OR REPLACE INTO candidate_rows
    SELECT NEW.model_id, NEW.score, NEW.status, NEW.flag, m.pipeline_tag, m.license, m.library_name,
           m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors
    FROM models m WHERE m.model_id = NEW.model_id;
END;

CREATE TRIGGER candidate_rows_candidate_delete AFTER DELETE ON candidates
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
END;

CREATE TRIGGER registry_rows_model_insert AFTER INSERT ON models
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
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
    downloads, likes, last_modified, created_at, use_restricted, safetensors ON models
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    UPDATE model_search SET downloads = NEW.downloads WHERE model_id = NEW.model_id;
    UPDATE candidate_rows SET pipeline_tag = NEW.pipeline_tag, license = NEW.license,
        library_name = NEW.library_name, quantization = NEW.quantization, downloads = NEW.downloads,
        likes = NEW.likes, last_modified = NEW.last_modified, created_at = NEW.created_at,
        use_restricted = NEW.use_restricted, safetensors = NEW.safetensors
    WHERE model_id = NEW.model_id;
END;

CREATE TRIGGER registry_rows_model_rename AFTER UPDATE OF model_id ON models
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    DELETE FROM model_search WHERE model_id = OLD.model_id;
    INSERT OR REPLACE INTO model_search VALUES (
        NEW.model_id,
        replace(replace(replace(replace(replace(replace(lower(NEW.model_id), '-', ''), '_', ''), '.', ''), '/', ''),
                ' ', ''), ':', ''),
        NEW.downloads);
END;

CREATE TRIGGER registry_rows_model_delete AFTER DELETE ON models
    WHEN NOT EXISTS (SELECT 1 FROM registry_rows_deferred) BEGIN
    DELETE FROM model_search WHERE model_id = OLD.model_id;
    DELETE FROM candidate_rows WHERE model_id = OLD.model_id;
END;
