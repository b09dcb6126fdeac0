DROP INDEX CONCURRENTLY IF EXISTS distributions_deleted_idx;
