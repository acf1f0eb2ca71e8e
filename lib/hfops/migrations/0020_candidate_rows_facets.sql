-- The Candidates page's facet filters (issue 17: a pipeline filter at 100,000 candidates took 9x its time at
-- 100). A facet filter counted its matches by scanning every wide `candidate_rows` row (about 20 ms at
-- 100,000), then scanned them again to sort a page of a few thousand. This narrow index of the four facets
-- counts a pipeline tag's candidates from one range of it (about 1 ms) and any other facet's from a scan
-- of it (about half the table's), and hands a page of a few matches their rows. One index, not one a
-- facet: each costs a B-tree insert per candidate a sync writes (one: 0.14 s of CPU in a full sync of 9 s;
-- four: 1.0 s).
-- hfops.views.candidates picks, from the count, whether a page goes through it or walks the sort index.
CREATE INDEX candidate_rows_facets ON candidate_rows (pipeline_tag, license, library_name, status, score);
