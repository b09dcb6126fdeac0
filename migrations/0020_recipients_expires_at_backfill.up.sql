-- Gives the recipients that existed before migration 0011 their effective
-- expiry (see 0011): their own link's expiration, else the distribution's,
-- else the survey's end date. It walks the primary key in batches of 5,000
-- rows and commits after each, so no transaction holds more than a batch of
-- row locks, the table is never rewritten in one piece, and vacuum can reclaim
-- the old versions as it goes. A database that already ran the earlier,
-- one-statement version of 0011 finds nothing left to write.
-- (Alone in its file: a DO block may commit only outside a transaction block.)
DO $$
DECLARE
    last_i uuid;
    last_d text;
    last_c text;
BEGIN
    -- The first key, then batches strictly after the last key done: each
    -- batch is a range scan of the primary key.
    SELECT integration_id, distribution_id, contact_id INTO last_i, last_d, last_c
    FROM recipients ORDER BY integration_id, distribution_id, contact_id LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE recipients r
    SET expires_at = coalesce(r.link_expiration,
            (SELECT d.link_expiration FROM distributions d WHERE d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id),
            (SELECT s.end_date FROM surveys s WHERE s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id))
    WHERE (r.integration_id, r.distribution_id, r.contact_id) = (last_i, last_d, last_c) AND r.expires_at IS NULL;
    COMMIT;
    LOOP
        WITH batch AS (
            SELECT r.integration_id, r.distribution_id, r.contact_id, r.expires_at,
                   coalesce(r.link_expiration,
                       (SELECT d.link_expiration FROM distributions d WHERE d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id),
                       (SELECT s.end_date FROM surveys s WHERE s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id)) AS effective
            FROM recipients r
            WHERE (r.integration_id, r.distribution_id, r.contact_id) > (last_i, last_d, last_c)
            ORDER BY r.integration_id, r.distribution_id, r.contact_id
            LIMIT 5000
        ), done AS (
            -- Only rows that gain an expiry are written.
            UPDATE recipients r
            SET expires_at = b.effective
            FROM batch b
            WHERE r.integration_id = b.integration_id AND r.distribution_id = b.distribution_id AND r.contact_id = b.contact_id
              AND b.expires_at IS NULL AND b.effective IS NOT NULL
        )
        SELECT integration_id, distribution_id, contact_id INTO last_i, last_d, last_c
        FROM batch
        ORDER BY integration_id DESC, distribution_id DESC, contact_id DESC
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        COMMIT;
    END LOOP;
END
$$;
