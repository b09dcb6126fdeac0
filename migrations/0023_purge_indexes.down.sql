DROP INDEX IF EXISTS sync_runs_finished_idx;
DROP INDEX IF EXISTS surveys_deleted_idx;
