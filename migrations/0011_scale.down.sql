ALTER TABLE recipients RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE notifications RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE deliveries RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE integrations DROP COLUMN IF EXISTS deleted_at;
CREATE INDEX IF NOT EXISTS recipients_expiry_idx ON recipients (link_expiration)
    WHERE deleted_at IS NULL AND link_expiration IS NOT NULL;
DROP TRIGGER IF EXISTS recipients_expires_at ON recipients;
DROP TRIGGER IF EXISTS recipients_link_expiration ON recipients;
DROP FUNCTION IF EXISTS recipients_expires_at();
ALTER TABLE recipients DROP COLUMN IF EXISTS expiry_settled_at;
ALTER TABLE recipients DROP COLUMN IF EXISTS expires_at;
