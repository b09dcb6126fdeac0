ALTER TABLE rate_buckets DROP COLUMN factor_at, DROP COLUMN factor;
