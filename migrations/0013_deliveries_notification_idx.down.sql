DROP INDEX CONCURRENTLY IF EXISTS deliveries_notification_idx;
