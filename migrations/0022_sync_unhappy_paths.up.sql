-- The sync's unhappy paths. Every statement here changes the
-- catalog only (new columns with constant defaults), or touches the rows it
-- names through an index; none waits long for a lock.
SET lock_timeout = '10s';

-- When the integration's first successful full sync started: a distribution
-- created (else sent) before then existed already, and the first time its
-- recipients are read, whenever that is, is silent.
ALTER TABLE integrations ADD COLUMN first_full_sync_started_at timestamptz;
UPDATE integrations i SET first_full_sync_started_at = coalesce(
    (SELECT min(r.started_at) FROM sync_runs r WHERE r.integration_id = i.id AND r.kind = 'full'
        AND r.status = 'succeeded' AND r.finished_at <= i.first_full_sync_at),
    i.first_full_sync_at)
WHERE i.first_full_sync_at IS NOT NULL;

-- recipients_silent: the next merge of the distribution's recipients raises no
-- notice (it existed at the first full sync and was never read, or it came
-- back after being removed); the merge clears it.
-- seen_run_id: the full run that last saw the row in a complete listing. A
-- full run removes what it did not see by comparing run ids, not the clocks
-- of the replicas that wrote synced_at.
-- history_unavailable: the distribution's history answered "not available"
-- (no XM Directory licence) when last read: a fact about the brand, re-checked
-- when the distribution comes due for verification, not a warning that
-- forces a re-read on every full sync.
ALTER TABLE distributions
    ADD COLUMN recipients_silent boolean NOT NULL DEFAULT false,
    ADD COLUMN seen_run_id bigint,
    ADD COLUMN history_unavailable boolean NOT NULL DEFAULT false;
ALTER TABLE surveys ADD COLUMN seen_run_id bigint;

-- Distributions never read that existed at the first full sync: silent.
UPDATE distributions d SET recipients_silent = true
FROM integrations i
WHERE i.id = d.integration_id AND d.recipients_synced_at IS NULL AND d.deleted_at IS NULL
    AND (i.first_full_sync_started_at IS NULL OR coalesce(d.created_date, d.send_date) < i.first_full_sync_started_at)
    AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.integration_id = d.integration_id AND r.distribution_id = d.qualtrics_id);

-- Slices of a run in which a unit made no progress: after a few it fails
-- with a warning instead of restarting forever.
ALTER TABLE sync_units ADD COLUMN stalls integer NOT NULL DEFAULT 0;
