-- A 429 lowers a brand's bucket to a share of its rate (halving it), shared by
-- every replica; the share recovers linearly from factor_at on, by the rate
-- the syncer passes with each take, while no other 429 comes.
ALTER TABLE rate_buckets
    ADD COLUMN factor double precision NOT NULL DEFAULT 1,
    ADD COLUMN factor_at timestamptz;
