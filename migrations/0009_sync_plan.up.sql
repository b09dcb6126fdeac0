-- A sync run is a plan of short units (the survey listing, one unit per active
-- survey, one per distribution whose recipients are read), worked by short
-- River jobs; the run records which units are done so an interrupted run
-- continues where it stopped.
ALTER TABLE sync_runs
    ADD COLUMN phase         text NOT NULL DEFAULT 'surveys' CHECK (phase IN ('surveys', 'units', 'finish')),
    ADD COLUMN units_total   integer NOT NULL DEFAULT 0,
    ADD COLUMN units_done    integer NOT NULL DEFAULT 0,
    ADD COLUMN units_failed  integer NOT NULL DEFAULT 0,
    ADD COLUMN jobs          integer NOT NULL DEFAULT 0,
    ADD COLUMN base_url      text NOT NULL DEFAULT '';

CREATE TABLE sync_units (
    run_id          bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    key             text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('survey', 'recipients')),
    survey_id       text NOT NULL,
    distribution_id text NOT NULL DEFAULT '',
    -- survey units: read the survey's details first (new, activated, modified).
    need_details    boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    -- recipients units of large distributions: where the history and links
    -- listings stopped (the nextPage to follow), and whether their pages are
    -- staged in sync_stage_history / sync_stage_links.
    staged          boolean NOT NULL DEFAULT false,
    history_next    text NOT NULL DEFAULT '',
    history_done    boolean NOT NULL DEFAULT false,
    history_missing text NOT NULL DEFAULT '',
    links_next      text NOT NULL DEFAULT '',
    links_done      boolean NOT NULL DEFAULT false,
    next_ord        integer NOT NULL DEFAULT 0,
    pages           integer NOT NULL DEFAULT 0,
    error           text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, key)
);
-- Jobs pick the pending units of their run, surveys before recipients.
CREATE INDEX sync_units_pending_idx ON sync_units (run_id, kind DESC, key) WHERE status = 'pending';

-- Pages of large distributions, staged in short transactions while the unit
-- reads them and merged at the end of the unit; deleted once merged.
CREATE TABLE sync_stage_history (
    run_id                bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    distribution_id       text NOT NULL,
    ord                   integer NOT NULL,
    contact_id            text NOT NULL,
    contact_lookup_id     text NOT NULL,
    status                text NOT NULL,
    survey_link           text NOT NULL,
    response_id           text NOT NULL,
    sent_at               timestamptz,
    opened_at             timestamptz,
    response_started_at   timestamptz,
    response_completed_at timestamptz
);
CREATE INDEX sync_stage_history_idx ON sync_stage_history (run_id, distribution_id);

CREATE TABLE sync_stage_links (
    run_id          bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    distribution_id text NOT NULL,
    ord             integer NOT NULL,
    contact_id      text NOT NULL,
    email           text NOT NULL,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    link            text NOT NULL,
    link_expiration timestamptz,
    unsubscribed    boolean NOT NULL,
    exceeded        boolean NOT NULL
);
CREATE INDEX sync_stage_links_idx ON sync_stage_links (run_id, distribution_id);

-- One token bucket per Qualtrics brand and endpoint ('*' is the brand's whole
-- budget), shared by every replica and every integration of the brand.
CREATE TABLE rate_buckets (
    brand_key     text NOT NULL,
    endpoint      text NOT NULL,
    tokens        double precision NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- After a 429 the brand (or endpoint) waits until then, on every replica.
    blocked_until timestamptz,
    throttled     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_key, endpoint)
);

-- Every live distribution's history and links are re-read at least this often
-- by full syncs (which otherwise read only what moved).
ALTER TABLE integrations ADD COLUMN verify_every interval NOT NULL DEFAULT '24 hours';

-- A distribution whose links are unavailable backs off instead of being re-read
-- by every incremental.
ALTER TABLE distributions
    ADD COLUMN recipients_retry_at timestamptz,
    ADD COLUMN recipients_failures integer NOT NULL DEFAULT 0;
