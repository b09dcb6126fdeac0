-- The admin list pages integrations in creation order by keyset: an index
-- range whatever the fleet's size.
CREATE INDEX CONCURRENTLY IF NOT EXISTS integrations_created_idx ON integrations (created_at, id)
    WHERE deleted_at IS NULL;
