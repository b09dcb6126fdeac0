ALTER TABLE distributions DROP COLUMN recipients_retry_at, DROP COLUMN recipients_failures;
ALTER TABLE integrations DROP COLUMN verify_every;
DROP TABLE rate_buckets;
DROP TABLE sync_stage_links;
DROP TABLE sync_stage_history;
DROP TABLE sync_units;
ALTER TABLE sync_runs DROP COLUMN phase, DROP COLUMN units_total, DROP COLUMN units_done, DROP COLUMN units_failed,
    DROP COLUMN jobs, DROP COLUMN base_url;
