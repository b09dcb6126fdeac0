CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('new_survey', 'survey_expiring', 'survey_statistics')),
    -- e.g. "new_survey:<integration>:<distribution>:<contact>": a re-run, an overlapping
    -- job or a second replica inserts the same key and ON CONFLICT DO NOTHING keeps one.
    dedupe_key      text NOT NULL UNIQUE,
    email           text NOT NULL CHECK (email = lower(btrim(email))),
    survey_id       text NOT NULL DEFAULT '',
    distribution_id text NOT NULL DEFAULT '',
    contact_id      text NOT NULL DEFAULT '',
    -- What the templates need to render the notification in any language.
    data            jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    read_at         timestamptz
);

-- The feed: a user's unexpired notifications, newest first, and the unread badge.
CREATE INDEX notifications_email_idx ON notifications (email, created_at DESC);
CREATE INDEX notifications_expires_idx ON notifications (expires_at);

CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    idempotency_key text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);

-- Admins list an integration's deliveries newest first.
CREATE INDEX deliveries_integration_idx ON deliveries (integration_id, id DESC);
