-- Per-user notification settings, keyed by the user's email (as the sync
-- stores it: trimmed, lower-cased). language and time_zone are remembered from
-- the pages (the language last chosen or the browser's, the browser's zone);
-- email_off is the user's "no email notifications" choice (the feed is not
-- affected); unsubscribe_token names the user in the one-click unsubscribe
-- link of their emails (RFC 8058), so that link needs no sign-in.
CREATE TABLE user_settings (
    email             text PRIMARY KEY,
    language          text NOT NULL DEFAULT '' CHECK (language IN ('', 'en', 'fr')),
    time_zone         text NOT NULL DEFAULT '' CHECK (length(time_zone) <= 64),
    email_off         boolean NOT NULL DEFAULT false,
    email_off_at      timestamptz,
    unsubscribe_token text UNIQUE,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Defaults for people who never signed in: the language and time zone of an
-- integration's emails and chat messages; empty: the service's default (English, UTC).
ALTER TABLE integrations
    ADD COLUMN notification_language  text NOT NULL DEFAULT '' CHECK (notification_language IN ('', 'en', 'fr')),
    ADD COLUMN notification_time_zone text NOT NULL DEFAULT '' CHECK (length(notification_time_zone) <= 64);
