ALTER TABLE sync_units DROP COLUMN stalls;
ALTER TABLE surveys DROP COLUMN seen_run_id;
ALTER TABLE distributions DROP COLUMN recipients_silent, DROP COLUMN seen_run_id, DROP COLUMN history_unavailable;
ALTER TABLE integrations DROP COLUMN first_full_sync_started_at;
