-- A Qualtrics event that brings a recipient to a reached status (found by the
-- chaos run) marks it unannounced: the sync that next reads the
-- recipient reports it as delivered, so its new_survey notice is raised (the
-- merge saw the same status as stored and reported nothing before). Adding a
-- column with a constant default rewrites nothing.
SET lock_timeout = '10s';
ALTER TABLE recipients ADD COLUMN unannounced boolean NOT NULL DEFAULT false;
