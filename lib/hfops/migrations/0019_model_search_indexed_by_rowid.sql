-- The index's hits by rowid (issue 17: a `bert` search over 200,000 models). FTS5 answers `LIKE '%key%'`
-- by intersecting the key's trigram lists (about 1 ms for 6,500 hits) and then reading every hit's content
-- row to check the pattern (about 20 ms). A search instead takes the trigram lists' rowids (`MATCH`) and
-- checks the pattern on this covering index of the keys the index holds, one integer seek a hit.
CREATE INDEX model_search_indexed_rowid ON model_search_indexed (trigram_rowid, search_key);
