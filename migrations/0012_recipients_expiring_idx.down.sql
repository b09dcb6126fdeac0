DROP INDEX CONCURRENTLY IF EXISTS recipients_expiring_idx;
