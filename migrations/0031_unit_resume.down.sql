ALTER TABLE sync_units DROP COLUMN details_due, DROP COLUMN details_read, DROP COLUMN listing_next;
ALTER TABLE sync_units DROP COLUMN stage_run_id;
ALTER TABLE distributions DROP COLUMN resume_at, DROP COLUMN resume_cursor, DROP COLUMN resume_run_id;
