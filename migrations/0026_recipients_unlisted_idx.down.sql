DROP INDEX CONCURRENTLY IF EXISTS recipients_unlisted_idx;
