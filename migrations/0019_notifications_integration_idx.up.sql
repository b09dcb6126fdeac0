-- notifications.integration_id references integrations ON DELETE CASCADE:
-- removing an integration's last row looked its notifications up by a scan of
-- the whole table without this index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_integration_idx ON notifications (integration_id);
