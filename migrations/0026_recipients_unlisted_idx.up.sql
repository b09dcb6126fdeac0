-- The recipients a run found unlisted, for its decision at the end:
-- a small partial index, built concurrently (recipients is the largest table).
CREATE INDEX CONCURRENTLY IF NOT EXISTS recipients_unlisted_idx ON recipients (integration_id, unlisted_run_id)
    WHERE unlisted_run_id IS NOT NULL AND deleted_at IS NULL;
