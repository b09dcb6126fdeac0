ALTER TABLE integrations
    DROP COLUMN IF EXISTS webhook_format,
    DROP COLUMN IF EXISTS webhook_secret_key_id,
    DROP COLUMN IF EXISTS webhook_secret_sealed,
    DROP COLUMN IF EXISTS webhook_url;
