DROP INDEX IF EXISTS audit_events_integration_idx;
