DROP INDEX CONCURRENTLY IF EXISTS notifications_integration_idx;
