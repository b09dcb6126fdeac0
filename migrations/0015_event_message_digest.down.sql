DROP INDEX IF EXISTS qualtrics_events_msg_idx;
ALTER TABLE qualtrics_events DROP COLUMN IF EXISTS msg_sha256;
