-- The distributions whose history was unavailable (no XM Directory licence),
-- for a full sync's probe of one of them: a few rows, not the integration's
-- whole history of distributions.
CREATE INDEX CONCURRENTLY IF NOT EXISTS distributions_history_unavailable_idx ON distributions (integration_id, recipients_synced_at)
    WHERE history_unavailable AND deleted_at IS NULL;
