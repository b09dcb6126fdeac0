ALTER TABLE recipients DROP COLUMN unlisted_run_id;
ALTER TABLE sync_units DROP COLUMN listed;
ALTER TABLE sync_runs DROP COLUMN override_veto, DROP COLUMN veto_decided, DROP COLUMN vetoed, DROP COLUMN removals;
ALTER TABLE integrations DROP COLUMN veto_max_delete_percent, DROP COLUMN veto_min_rows;
