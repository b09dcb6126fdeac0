DROP INDEX CONCURRENTLY IF EXISTS integrations_created_idx;
