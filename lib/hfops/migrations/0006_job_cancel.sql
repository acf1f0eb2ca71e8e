-- Jobs can be cancelled (status 'cancelled', resumable later) and record when a killed worker's job was found.
ALTER TABLE jobs ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE jobs ADD COLUMN interrupted_at TEXT;
-- The enqueuer's resolved settings (sections as JSON; never a secret): a job never reloads a config file.
ALTER TABLE jobs ADD COLUMN settings TEXT;
