-- deliveries.notification_id references notifications ON DELETE CASCADE: each
-- notification the purge deletes looked its deliveries up by a scan of the
-- whole table without this index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS deliveries_notification_idx ON deliveries (notification_id);
