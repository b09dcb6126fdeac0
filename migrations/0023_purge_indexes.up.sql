-- The purge finds what outlived its retention through indexes:
-- finished sync runs by when they finished, and surveys marked deleted.
-- Both tables are small (runs are purged, surveys are a brand's), so a plain
-- CREATE INDEX takes a short lock; it waits for it at most 10 s.
SET lock_timeout = '10s';
CREATE INDEX IF NOT EXISTS sync_runs_finished_idx ON sync_runs (finished_at) WHERE status IN ('succeeded', 'failed');
CREATE INDEX IF NOT EXISTS surveys_deleted_idx ON surveys (deleted_at) WHERE deleted_at IS NOT NULL;
