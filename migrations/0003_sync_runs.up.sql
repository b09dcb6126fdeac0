CREATE TABLE sync_runs (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id          uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind                    text NOT NULL CHECK (kind IN ('full', 'incremental')),
    status                  text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    trigger                 text NOT NULL DEFAULT 'schedule',
    -- The River job working this run, so deleting an integration can cancel it.
    river_job_id            bigint,
    queued_at               timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    finished_at             timestamptz,
    api_calls               integer NOT NULL DEFAULT 0,
    api_calls_by_endpoint   jsonb NOT NULL DEFAULT '{}',
    surveys                 integer NOT NULL DEFAULT 0,
    distributions           integer NOT NULL DEFAULT 0,
    recipients              integer NOT NULL DEFAULT 0,
    notifications           integer NOT NULL DEFAULT 0,
    warnings                jsonb NOT NULL DEFAULT '[]',
    changes                 jsonb NOT NULL DEFAULT '[]',
    error                   text NOT NULL DEFAULT ''
);

-- At most one queued or running sync per integration, whichever replica asks:
-- a second trigger finds the existing run instead of starting another.
CREATE UNIQUE INDEX sync_runs_one_active_idx ON sync_runs (integration_id) WHERE status IN ('queued', 'running');
-- The admin API lists an integration's runs newest first.
CREATE INDEX sync_runs_integration_idx ON sync_runs (integration_id, id DESC);

-- 24 h of Qualtrics calls per integration, when the integration enables logging.
-- Never a token, never a response body.
CREATE TABLE request_logs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    sync_run_id    bigint,
    at             timestamptz NOT NULL,
    method         text NOT NULL,
    path           text NOT NULL,
    status         integer NOT NULL,
    duration_ms    integer NOT NULL,
    request_id     text NOT NULL DEFAULT '',
    error_code     text NOT NULL DEFAULT ''
);

-- Listing newest first per integration, and purging by age.
CREATE INDEX request_logs_integration_idx ON request_logs (integration_id, at DESC);
CREATE INDEX request_logs_at_idx ON request_logs (at);
