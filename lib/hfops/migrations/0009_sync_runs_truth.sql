-- Sync runs that tell the truth (issue 10): records received vs distinct models seen, duplicates merged,
-- pages lost (a pass with a lost page is 'partial'), the last sign of life and when a dead run was found.
ALTER TABLE sync_runs ADD COLUMN records INTEGER NOT NULL DEFAULT 0;      -- records received, duplicates included
ALTER TABLE sync_runs ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;   -- same id again in one page / snapshot (merged, last wins)
ALTER TABLE sync_runs ADD COLUMN lost_pages INTEGER NOT NULL DEFAULT 0;   -- pages that could not be read (the pass is partial)
ALTER TABLE sync_runs ADD COLUMN heartbeat_at TEXT;                       -- when the run last stored a page or backed off
ALTER TABLE sync_runs ADD COLUMN interrupted_at TEXT;                     -- when a run left 'running' by a dead process was found
