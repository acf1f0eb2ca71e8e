-- A full sync writes every `models` row of the listing (issue 17): each row's secondary indexes are B-trees
-- it rewrites. `models_matches` (0001, on `matches_rule`) is read by no query: nothing filters or orders
-- models by that column (the Candidates page reads `candidate_rows`, every other reader joins `candidates`
-- or looks a model up by id). The indexes on pipeline_tag, license and library_name stay: the filters of
-- hfops.registry.list_candidates (`hfops candidates`) and the promotion's task checks read them.

DROP INDEX IF EXISTS models_matches;
