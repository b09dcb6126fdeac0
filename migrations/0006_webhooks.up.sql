-- Per-integration webhook for notification deliveries. The secret signs each
-- body (HMAC-SHA256); it is sealed by the application like the Qualtrics
-- credential, with "webhook:<integration id>" as associated data.
ALTER TABLE integrations
    ADD COLUMN webhook_url           text NOT NULL DEFAULT '',
    ADD COLUMN webhook_secret_sealed bytea,
    ADD COLUMN webhook_secret_key_id text NOT NULL DEFAULT '',
    ADD COLUMN webhook_format        text NOT NULL DEFAULT 'json'
        CHECK (webhook_format IN ('json', 'slack', 'teams'));
