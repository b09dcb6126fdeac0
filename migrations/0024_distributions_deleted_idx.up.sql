-- Distributions marked deleted, for the purge. The table can be
-- large: built concurrently, alone in its file (no transaction block). An
-- index a failed build left INVALID is rebuilt by migrations.Up.
CREATE INDEX CONCURRENTLY IF NOT EXISTS distributions_deleted_idx ON distributions (deleted_at) WHERE deleted_at IS NOT NULL;
