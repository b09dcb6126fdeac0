-- The cleared BrandBaseURLs are learnt again by the next sync.
-- Only hashes were kept: the tokens cannot be restored, so every link of an
-- email sent since 0021 stops working, and the older code makes each user a
-- new token with their next email.
ALTER TABLE user_settings ADD COLUMN unsubscribe_token text UNIQUE;
DROP TABLE unsubscribe_tokens;
