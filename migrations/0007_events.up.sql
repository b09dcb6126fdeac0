-- Qualtrics event subscriptions (push): an integration that opts in gets a
-- shared key that signs the callbacks (HMAC-SHA512 of MSG). It is sealed like the
-- credential: AES-256-GCM by the application, the integration id as associated
-- data, events_key_id naming the key of the ring that sealed it. NULL until the
-- first subscription sync creates it.
ALTER TABLE integrations
    ADD COLUMN events_key_sealed bytea,
    ADD COLUMN events_key_id     text NOT NULL DEFAULT '';

-- The subscriptions registered in Qualtrics for an integration: one per active
-- survey (completedResponse, startedRecipientSession and partialResponse of that
-- survey), and one brand-level row for controlpanel.activateSurvey/deactivateSurvey
-- whose survey_id is ''. Knowing the ids lets a sync delete what it created and
-- nothing else.
CREATE TABLE event_subscriptions (
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    survey_id       text NOT NULL,
    subscription_id text NOT NULL,
    topics          text NOT NULL,
    -- A changed MICROAPPS_PUBLIC_URL makes the subscription stale: it is re-created.
    publication_url text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, survey_id)
);

-- Callbacks received, kept until applied and briefly after, so a retried or
-- replayed callback is recognised. The River job that applies one is inserted in
-- the same transaction as the row.
CREATE TABLE qualtrics_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    topic           text NOT NULL,
    survey_id       text NOT NULL DEFAULT '',
    -- The ResponseID of the message. Events that carry none (controlpanel topics,
    -- a session start before a response exists) get a stand-in starting with
    -- "none:" built from what identifies them (survey id + CompletedDate, or
    -- distribution + recipient), so the dedupe key below still holds.
    response_id     text NOT NULL,
    recipient_id    text NOT NULL DEFAULT '',
    distribution_id text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT '',
    occurred_at     timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- NULL while the event waits for its survey or recipient to be synced.
    applied_at      timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    -- Qualtrics retries callbacks and a replay must change nothing: the receiver
    -- inserts with ON CONFLICT DO NOTHING on this key.
    UNIQUE (integration_id, response_id, topic)
);

-- ReapplyPending walks an integration's pending events after each sync, oldest
-- first, and drops those older than 24 h; applied events are left out of the
-- index, so it stays as small as the backlog.
CREATE INDEX qualtrics_events_pending_idx ON qualtrics_events (integration_id, received_at) WHERE applied_at IS NULL;
-- ReapplyPending also purges an integration's applied events after a week (long
-- enough for any callback retry to meet its dedupe key), by age.
CREATE INDEX qualtrics_events_applied_idx ON qualtrics_events (integration_id, applied_at) WHERE applied_at IS NOT NULL;
-- The apply worker matches RecipientID against contact_lookup_id as well as
-- contact_id (the primary key covers the latter).
CREATE INDEX recipients_lookup_idx ON recipients (integration_id, distribution_id, contact_lookup_id);
