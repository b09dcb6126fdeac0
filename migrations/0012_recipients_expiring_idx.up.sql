-- The expiry rule: recipients the invitation reached, not finished, whose
-- effective expiry falls inside the window. Only such rows are in the index.
-- (Alone in its file: CREATE INDEX CONCURRENTLY cannot run in a transaction.)
CREATE INDEX CONCURRENTLY IF NOT EXISTS recipients_expiring_idx ON recipients (expires_at)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL
    AND status IN ('Success', 'Opened', 'Complaint', 'SurveyStarted', 'SurveyPartiallyFinished', 'SessionExpired');
