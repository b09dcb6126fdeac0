DROP INDEX IF EXISTS recipients_lookup_idx;
DROP TABLE IF EXISTS qualtrics_events;
DROP TABLE IF EXISTS event_subscriptions;
ALTER TABLE integrations
    DROP COLUMN IF EXISTS events_key_id,
    DROP COLUMN IF EXISTS events_key_sealed;
