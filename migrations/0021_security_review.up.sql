-- Third security review: hashed, expiring unsubscribe tokens, and
-- BrandBaseURLs that pass the host policy.

-- Unsubscribe tokens are stored as their SHA-256 only, one per email sent,
-- and expire. Before, one token per user was kept in
-- clear in user_settings and never changed: anyone who could read the table
-- or a forwarded email could turn the user's email off for ever, even after
-- they turned it back on. Now each email carries a token of its own, valid
-- 60 days; turning email back on removes every token of the user (store:
-- SetEmailOff), so an old link stops working.
CREATE TABLE unsubscribe_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    email      text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX unsubscribe_tokens_email ON unsubscribe_tokens (email);
CREATE INDEX unsubscribe_tokens_expires_at ON unsubscribe_tokens (expires_at);

-- The tokens of emails already sent keep working, hashed, for 60 days.
INSERT INTO unsubscribe_tokens (token_hash, email, expires_at)
SELECT sha256(convert_to(unsubscribe_token, 'UTF8')), email, now() + interval '60 days'
FROM user_settings
WHERE unsubscribe_token IS NOT NULL;

ALTER TABLE user_settings DROP COLUMN unsubscribe_token;

-- A BrandBaseURL learnt from Qualtrics goes into the deep links of emails
-- and pages, and must now be a qualtrics.com host over https, or one of
-- MICROAPPS_QUALTRICS_ALLOWED_HOSTS. Those this SQL cannot tell
-- apart from a hostile one (any other host; the allowed hosts are
-- configuration) are cleared: the next sync learns them again through the
-- check.
UPDATE integrations SET brand_base_url = ''
WHERE brand_base_url <> ''
  AND brand_base_url !~* '^https://([a-z0-9-]+\.)+qualtrics\.com(:443)?(/[^@]*)?$';
