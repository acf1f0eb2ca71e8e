-- A trigram index of every synced model's search key (issue 17: search 100,000+ models as fast as 100).
-- The id search (`model_search.search_key LIKE '%key%'`) scanned every row: ~20-30 ms at 200,000 models.
-- Indexing a key costs 11-30 us (2.3-6 s for 200,000 keys on 2 shared cores), so the index is not written by
-- a sync page: a new or re-keyed `model_search` row only notes its id in `model_search_pending` (the triggers
-- below), and hfops.search_index.index_pending brings the index up to date after the run (every sync once
-- its run is recorded, the worker every minute for other writers). A search reads the index
-- plus the noted ids in one statement, and rechecks every hit against `model_search` itself, so it gives
-- exactly what a scan gives whether the index is current or not.

-- The indexed keys; `model_id` is carried, not indexed.
CREATE VIRTUAL TABLE model_search_trigrams USING fts5(
    search_key, model_id UNINDEXED, tokenize = 'trigram', detail = 'none'
);

-- Which key of which model the index holds, under which rowid of `model_search_trigrams`.
CREATE TABLE model_search_indexed (
    model_id TEXT PRIMARY KEY,
    search_key TEXT NOT NULL,
    trigram_rowid INTEGER NOT NULL
) WITHOUT ROWID;

-- Models whose key the index may not hold as it stands: added, renamed, re-keyed or removed since. Notes
-- are appended (an id may be noted twice), so a sync page's notes cost an append each, not a B-tree insert
-- at a random key.
CREATE TABLE model_search_pending (
    model_id TEXT NOT NULL
);

INSERT INTO model_search_pending SELECT model_id FROM model_search;

-- A row whose key is indexed as it stands is not noted. Writers update rows in place (an upsert, never
-- INSERT OR REPLACE: with recursive_triggers on, as sqlite-utils sets it, a REPLACE fires the delete trigger
-- below for every row it rewrites), so a re-sync of known models notes nothing.
CREATE TRIGGER model_search_pending_insert AFTER INSERT ON model_search
    WHEN NOT EXISTS (
        SELECT 1 FROM model_search_indexed i WHERE i.model_id = NEW.model_id AND i.search_key = NEW.search_key
    ) BEGIN
    INSERT INTO model_search_pending VALUES (NEW.model_id);
END;

CREATE TRIGGER model_search_pending_update AFTER UPDATE OF model_id, search_key ON model_search
    WHEN OLD.model_id IS NOT NEW.model_id OR OLD.search_key IS NOT NEW.search_key BEGIN
    INSERT INTO model_search_pending VALUES (OLD.model_id);
    INSERT INTO model_search_pending VALUES (NEW.model_id);
END;

-- Only an indexed key can go stale.
CREATE TRIGGER model_search_pending_delete AFTER DELETE ON model_search
    WHEN EXISTS (SELECT 1 FROM model_search_indexed i WHERE i.model_id = OLD.model_id) BEGIN
    INSERT INTO model_search_pending VALUES (OLD.model_id);
END;
