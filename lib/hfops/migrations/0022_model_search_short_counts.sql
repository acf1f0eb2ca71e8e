-- How many indexed keys hold each substring of one or two characters (issue 17: the count of a short word).
-- A trigram index cannot count a key shorter than three characters (`t5`: 19,034 of 204,266 keys), so a
-- search's total for one scanned every synced model (30 ms at 100,000 candidates); hfops.search_index
-- keeps this table with the index, each key taken as `LIKE` compares it (up to a NUL, ASCII-lowered), and
-- counts from it as it counts from the trigrams (less the pending models' indexed keys, plus their keys).
--
-- The index is rebuilt so that the counts and the index describe the same keys: every synced model is noted
-- pending, and hfops.search_index.index_pending indexes them (`hfops init`, the worker's minute, a sync);
-- meanwhile a search scans, as it does for a store behind.

CREATE TABLE model_search_short_counts (
    substring TEXT PRIMARY KEY,
    keys INTEGER NOT NULL
) WITHOUT ROWID;

DELETE FROM model_search_trigrams;

DELETE FROM model_search_indexed;

DELETE FROM model_search_pending;

INSERT INTO model_search_pending SELECT model_id FROM model_search;
