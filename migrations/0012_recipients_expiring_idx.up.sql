-- The expiry rule: per integration, the recipients the invitation reached, not
-- finished, whose effective expiry falls inside the window and was not settled
-- by an earlier check. Only such rows are in the index; the rule walks it integration by integration (a range each),
-- so its cost follows the rows in the window, for one integration after its
-- sync as for all of them in the periodic check.
-- (Alone in its file: CREATE INDEX CONCURRENTLY cannot run in a transaction.)
CREATE INDEX CONCURRENTLY IF NOT EXISTS recipients_expiring_idx ON recipients (integration_id, expires_at)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expiry_settled_at IS DISTINCT FROM expires_at
    AND status IN ('Success', 'Opened', 'Complaint', 'SurveyStarted', 'SurveyPartiallyFinished', 'SessionExpired');
