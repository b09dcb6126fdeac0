-- Who changed what through the admin API. The actor is a label or a hash of the
-- admin token, never the token. Audit rows outlive the integration they describe.
CREATE TABLE audit_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    action         text NOT NULL,
    integration_id uuid,
    details        jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_at_idx ON audit_events (at DESC);

-- Web sessions (scs pgxstore layout).
CREATE TABLE sessions (
    token  text PRIMARY KEY,
    data   bytea NOT NULL,
    expiry timestamptz NOT NULL
);

CREATE INDEX sessions_expiry_idx ON sessions (expiry);
