-- Integrations are the tenants: one Qualtrics credential for one functional group.
-- Every other tenant table references integrations(id) with ON DELETE CASCADE, so
-- deleting an integration removes all of its synced data in one statement.
CREATE TABLE integrations (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    functional_group         text NOT NULL DEFAULT '',
    base_url                 text NOT NULL,
    icon                     text NOT NULL DEFAULT 'clipboard',

    -- The credential is sealed with AES-256-GCM by the application (integration id
    -- as associated data); secret_key_id names the key of the ring that sealed it so
    -- keys can rotate. auth_method says whether the secret is an API token or an
    -- OAuth client secret.
    auth_method              text NOT NULL DEFAULT 'token' CHECK (auth_method IN ('token', 'oauth')),
    secret_sealed            bytea NOT NULL,
    secret_key_id            text NOT NULL,
    secret_hint              text NOT NULL DEFAULT '',
    oauth_client_id          text NOT NULL DEFAULT '',
    oauth_scope              text NOT NULL DEFAULT '',

    rate_limit_enabled       boolean NOT NULL DEFAULT false,
    requests_per_minute      integer NOT NULL DEFAULT 1500 CHECK (requests_per_minute BETWEEN 1 AND 3000),
    request_timeout_seconds  integer NOT NULL DEFAULT 120 CHECK (request_timeout_seconds BETWEEN 1 AND 600),
    logging_enabled          boolean NOT NULL DEFAULT false,
    full_sync_every          interval NOT NULL DEFAULT '1 hour',
    incremental_sync_every   interval NOT NULL DEFAULT '15 minutes',
    -- {"start": "00:00", "end": "04:00", "timeZone": "Europe/Paris"} or NULL for "any time".
    full_sync_window         jsonb,
    events_enabled           boolean NOT NULL DEFAULT false,
    -- Per-integration deep-link templates; missing keys fall back to the defaults.
    deep_links               jsonb NOT NULL DEFAULT '{}',

    -- What /whoami said about the credential.
    brand_id                 text NOT NULL DEFAULT '',
    datacenter               text NOT NULL DEFAULT '',
    account_type             text NOT NULL DEFAULT '',
    qualtrics_user_id        text NOT NULL DEFAULT '',
    brand_base_url           text NOT NULL DEFAULT '',

    status                   text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'error')),
    status_message           text NOT NULL DEFAULT '',
    next_full_sync_at        timestamptz,
    next_incremental_sync_at timestamptz,
    last_sync_at             timestamptz,
    last_success_at          timestamptz,
    -- NULL until the first successful full sync: that sync raises no notifications
    -- and incrementals wait for it.
    first_full_sync_at       timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- The scheduler looks for integrations whose next sync is due.
CREATE INDEX integrations_due_idx ON integrations (status, next_incremental_sync_at, next_full_sync_at);

CREATE TABLE brand_admins (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    email          text NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, email)
);

-- Admin pages and statistics notifications ask "which integrations is this user
-- Brand Admin of?": by email, across integrations.
CREATE INDEX brand_admins_email_idx ON brand_admins (email);
