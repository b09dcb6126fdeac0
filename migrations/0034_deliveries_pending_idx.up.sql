-- The outbox's oldest pending delivery per channel, read at every metrics
-- scrape: an index probe, whatever the deliveries table holds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS deliveries_pending_idx ON deliveries (channel, created_at)
    WHERE status = 'pending';
