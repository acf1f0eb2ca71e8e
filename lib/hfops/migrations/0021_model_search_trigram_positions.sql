-- The trigram index with positions and without case folding (issue 17: the count of a common word). A
-- phrase of a key's trigrams (`MATCH '"llama"'`) then finds exactly the indexed keys that contain it, so a
-- search's total comes from the index (about 4 ms for the 27,855 keys holding `llama` among 204,266) where
-- it counted by scanning every synced model (28 ms). `detail = 'none'` (0018) could only find the keys
-- holding every trigram somewhere; folding (the tokenizer's default) is Unicode-wide where `LIKE` folds
-- ASCII only, so hfops.search_index indexes each key ASCII-lowered, as `LIKE` compares it. Indexing costs
-- the same (0.44-0.47 s for 44,628 keys either way); the index is half as big again (9.4 against 6.4 MB).
--
-- The index is rebuilt: every synced model is noted pending, and hfops.search_index.index_pending indexes
-- them (`hfops init`, the worker's minute, a sync); meanwhile a search scans, as it does for a store behind.

DROP TABLE model_search_trigrams;

CREATE VIRTUAL TABLE model_search_trigrams USING fts5(
    search_key, model_id UNINDEXED, tokenize = 'trigram case_sensitive 1', detail = 'full'
);

DELETE FROM model_search_indexed;

DELETE FROM model_search_pending;

INSERT INTO model_search_pending SELECT model_id FROM model_search;
