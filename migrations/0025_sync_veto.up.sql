-- Sync veto: a run that would remove much of an integration
-- removes nothing until an admin lets it (the template's veto rules).
SET lock_timeout = '10s';
ALTER TABLE integrations
    ADD COLUMN veto_max_delete_percent integer NOT NULL DEFAULT 50 CHECK (veto_max_delete_percent BETWEEN 1 AND 100),
    ADD COLUMN veto_min_rows integer NOT NULL DEFAULT 10 CHECK (veto_min_rows >= 0);

-- The run's decision, taken once, at its end, with the removals it allows in
-- the same transaction: it holds across slices, replicas and a SIGKILL.
-- removals counts what the run would remove (or removed), by kind.
ALTER TABLE sync_runs
    ADD COLUMN override_veto boolean NOT NULL DEFAULT false,
    ADD COLUMN veto_decided boolean NOT NULL DEFAULT false,
    ADD COLUMN vetoed boolean NOT NULL DEFAULT false,
    ADD COLUMN removals jsonb NOT NULL DEFAULT '{}';

-- A survey unit whose distribution listing was read to its end: only such a
-- survey's unseen distributions are removed.
ALTER TABLE sync_units ADD COLUMN listed boolean NOT NULL DEFAULT false;

-- Recipients a merge no longer found in their distribution's listings are
-- marked with the run that found them so; the run removes them at its end,
-- unless it is vetoed. A later merge that lists them again clears the mark.
ALTER TABLE recipients ADD COLUMN unlisted_run_id bigint;
