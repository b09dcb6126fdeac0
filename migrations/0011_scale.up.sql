-- Data at scale: what the rules and pages need is stored on the row
-- when it is written, not recomputed over the whole table on every read.

-- A recipient's effective expiry: its own link's expiration, else the
-- distribution's surveyLink expiration, else the survey's end date. The merge
-- writes it; a change of the distribution's expiration or of the survey's end
-- date rewrites the rows that inherit it. The expiry rule reads only the rows
-- whose expires_at falls inside its window (index of migration 0012).
ALTER TABLE recipients ADD COLUMN expires_at timestamptz;
-- Existing rows get theirs in migration 0020, in batches of their own
-- transactions: one UPDATE here would rewrite every row of a 100-million-row
-- table in a single transaction.

-- The expiry the expiry rule settled for the row (announced it, or found the
-- user finished or holding a later invitation). A settled row leaves the
-- rule's index (0012): the periodic check reads only what is new in its
-- window, not the whole window every five minutes. A changed expiry differs
-- from it and brings the row back.
ALTER TABLE recipients ADD COLUMN expiry_settled_at timestamptz;

-- A row inserted by any other writer than the merge (tools, fixtures) without
-- an expiry gets it computed the same way, and so does a row whose link
-- expiration another writer changed without the expiry.
CREATE FUNCTION recipients_expires_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.expires_at := coalesce(NEW.link_expiration,
        (SELECT link_expiration FROM distributions WHERE integration_id = NEW.integration_id AND qualtrics_id = NEW.distribution_id),
        (SELECT end_date FROM surveys WHERE integration_id = NEW.integration_id AND qualtrics_id = NEW.survey_id));
    RETURN NEW;
END
$$;
CREATE TRIGGER recipients_expires_at BEFORE INSERT ON recipients
    FOR EACH ROW WHEN (NEW.expires_at IS NULL) EXECUTE FUNCTION recipients_expires_at();
CREATE TRIGGER recipients_link_expiration BEFORE UPDATE OF link_expiration ON recipients
    FOR EACH ROW WHEN (NEW.link_expiration IS DISTINCT FROM OLD.link_expiration AND NEW.expires_at IS NOT DISTINCT FROM OLD.expires_at)
    EXECUTE FUNCTION recipients_expires_at();

-- Never used by any query (the expiry rule now reads recipients_expiring_idx).
DROP INDEX IF EXISTS recipients_expiry_idx;

-- Deleting an integration answers at once: the row is marked and disappears
-- from the API, the pages and the rules; a background job removes its data in
-- batches, then the row.
ALTER TABLE integrations ADD COLUMN deleted_at timestamptz;

-- The big tables are vacuumed and analyzed after a share of their rows
-- changed, not the default 20% (at 100 million recipients, 20 million dead
-- rows before a vacuum and stale statistics for hours).
ALTER TABLE recipients SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE notifications SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
