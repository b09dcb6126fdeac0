-- Qualtrics signs only MSG, not Topic: the same signed MSG posted again under
-- another topic must not count as a new event. Each stored event
-- keeps the SHA-256 of its MSG, and an integration accepts a signed MSG once,
-- whatever the topic. Rows from before this column have NULL, which the
-- unique index does not compare; the receiver refuses MSGs older than 48 h,
-- so they cannot be replayed once purged either.
ALTER TABLE qualtrics_events ADD COLUMN msg_sha256 bytea;
CREATE UNIQUE INDEX qualtrics_events_msg_idx ON qualtrics_events (integration_id, msg_sha256);
