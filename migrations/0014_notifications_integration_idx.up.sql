-- notifications.integration_id references integrations: deleting an
-- integration's data (in batches) finds its notifications by this index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_integration_idx ON notifications (integration_id, id);
