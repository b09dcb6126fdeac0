-- The console shows each integration's audit trail newest first, paged by id.
CREATE INDEX audit_events_integration_idx ON audit_events (integration_id, id DESC) WHERE integration_id IS NOT NULL;
