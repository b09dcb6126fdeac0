DROP INDEX CONCURRENTLY IF EXISTS distributions_resume_idx;
