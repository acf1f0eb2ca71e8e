-- Where each system of an eval run ran from (hfops.models.ResolvedModel.record(): model id, source
-- packaged|local|cached|downloaded|api, revision = commit sha, format, quantization, file hashes), as JSON.
-- Filled by the eval job's acquisition step; NULL for baselines and for runs made before this migration.
ALTER TABLE eval_runs ADD COLUMN candidate_source TEXT;
ALTER TABLE eval_runs ADD COLUMN production_source TEXT;
