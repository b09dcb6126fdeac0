-- The few distributions holding a resume, for the clean-up of staged pages.
CREATE INDEX CONCURRENTLY IF NOT EXISTS distributions_resume_idx ON distributions (resume_run_id)
    WHERE resume_run_id IS NOT NULL;
