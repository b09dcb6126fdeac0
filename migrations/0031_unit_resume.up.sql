-- A large distribution whose read failed part-way keeps its staged pages and
-- its cursor for the next run: the next read goes on from there
-- instead of page 1. resume_run_id is the run the pages are staged under,
-- resume_cursor the unit's cursor when it failed, resume_at when; a resume
-- older than the syncer's limit is dropped.
SET lock_timeout = '10s';
ALTER TABLE distributions
    ADD COLUMN resume_run_id bigint,
    ADD COLUMN resume_cursor jsonb,
    ADD COLUMN resume_at timestamptz;

-- The run whose staged pages a unit continues (NULL: its own run's).
ALTER TABLE sync_units ADD COLUMN stage_run_id bigint;

-- A survey unit's cursor: where its distribution listing stands
-- (the nextPage to follow), whether it read the survey's details, and whether
-- they must be read again at the end (a distribution's figures moved).
ALTER TABLE sync_units
    ADD COLUMN listing_next text NOT NULL DEFAULT '',
    ADD COLUMN details_read boolean NOT NULL DEFAULT false,
    ADD COLUMN details_due boolean NOT NULL DEFAULT false;
