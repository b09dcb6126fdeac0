-- Survey results pages a distribution's recipients by email, by keyset on this
-- index: a page reads its 50 rows, whatever the size of the distribution.
CREATE INDEX CONCURRENTLY IF NOT EXISTS recipients_distribution_email_idx
    ON recipients (integration_id, distribution_id, email, contact_id) WHERE deleted_at IS NULL;
