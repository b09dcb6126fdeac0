package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// DistributionInput is one element of a survey's distribution listing, as the
// sync writes it. Zero times are stored as NULL.
type DistributionInput struct {
	ID                   string
	SurveyID             string
	ParentDistributionID string
	OwnerID              string
	OrganizationID       string
	RequestStatus        string
	RequestType          string
	SendDate             time.Time
	CreatedDate          time.Time
	ModifiedDate         time.Time
	FromEmail            string
	ReplyToEmail         string
	FromName             string
	Subject              string
	MailingListID        string
	ContactID            string
	LibraryID            string
	SampleID             string
	LinkType             string
	LinkExpiration       time.Time
	Stats                DistributionStats
}

// DistributionStats are the nine figures of a distribution.
type DistributionStats struct {
	Sent, Failed, Started, Bounced, Opened, Skipped, Finished, Complaints, Blocked int
}

// DistributionPage is what one page of distributions changed.
type DistributionPage struct {
	Changes []Change
	// StaleRecipients lists the distributions of the page whose history and
	// links must be read: never read, or new figures or a new modifiedDate
	// since they were.
	StaleRecipients []string
}

const distributionStaging = `ord int NOT NULL, qualtrics_id text NOT NULL, survey_id text NOT NULL,
	parent_distribution_id text NOT NULL, owner_id text NOT NULL, organization_id text NOT NULL,
	request_status text NOT NULL, request_type text NOT NULL, send_date timestamptz, created_date timestamptz,
	modified_date timestamptz, from_email text NOT NULL, reply_to_email text NOT NULL, from_name text NOT NULL,
	subject text NOT NULL, mailing_list_id text NOT NULL, contact_id text NOT NULL, library_id text NOT NULL,
	sample_id text NOT NULL, link_type text NOT NULL, link_expiration timestamptz,
	sent int NOT NULL, failed int NOT NULL, started int NOT NULL, bounced int NOT NULL, opened int NOT NULL,
	skipped int NOT NULL, finished int NOT NULL, complaints int NOT NULL, blocked int NOT NULL`

var distributionStagingColumns = []string{"ord", "qualtrics_id", "survey_id", "parent_distribution_id", "owner_id",
	"organization_id", "request_status", "request_type", "send_date", "created_date", "modified_date", "from_email",
	"reply_to_email", "from_name", "subject", "mailing_list_id", "contact_id", "library_id", "sample_id", "link_type",
	"link_expiration", "sent", "failed", "started", "bounced", "opened", "skipped", "finished", "complaints", "blocked"}

// A stats snapshot is inserted in the same statement for new distributions
// and for those whose nine figures changed; recipients_synced_at is cleared in
// that case (and when modifiedDate moved) so the recipients are read again by
// this run or, if it dies first, by the next one.
const upsertDistributionsSQL = `
WITH src AS (
	SELECT DISTINCT ON (qualtrics_id) * FROM sync_distributions_stage ORDER BY qualtrics_id, ord DESC
), old AS (
	SELECT d.qualtrics_id, d.sent, d.failed, d.started, d.bounced, d.opened, d.skipped, d.finished, d.complaints, d.blocked,
		d.link_expiration AS old_link_expiration
	FROM distributions d JOIN src USING (qualtrics_id) WHERE d.integration_id = $1
), up AS (
	INSERT INTO distributions AS d (integration_id, qualtrics_id, survey_id, parent_distribution_id, owner_id,
		organization_id, request_status, request_type, send_date, created_date, modified_date, from_email,
		reply_to_email, from_name, subject, mailing_list_id, contact_id, library_id, sample_id, link_type,
		link_expiration, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked,
		synced_at, created_at, updated_at, seen_run_id, recipients_silent)
	SELECT $1, qualtrics_id, survey_id, parent_distribution_id, owner_id,
		organization_id, request_status, request_type, send_date, created_date, modified_date, from_email,
		reply_to_email, from_name, subject, mailing_list_id, contact_id, library_id, sample_id, link_type,
		link_expiration, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked, $2, $2, $2,
		` + currentFullRun + `,
		-- A distribution that existed when the integration's first full sync
		-- started (by Qualtrics' own dates) holds old invitations: the first
		-- read of its recipients, whenever it comes, announces nothing.
		-- (Qualtrics gives its dates to the second: one of the same second
		-- as the start is taken as new.)
		coalesce((SELECT i.first_full_sync_started_at IS NULL
			OR coalesce(src.created_date, src.send_date) < date_trunc('second', i.first_full_sync_started_at)
			FROM integrations i WHERE i.id = $1), false)
	FROM src
	ON CONFLICT (integration_id, qualtrics_id) DO UPDATE SET
		survey_id = excluded.survey_id, parent_distribution_id = excluded.parent_distribution_id,
		owner_id = excluded.owner_id, organization_id = excluded.organization_id,
		request_status = excluded.request_status, request_type = excluded.request_type,
		send_date = excluded.send_date, created_date = excluded.created_date, modified_date = excluded.modified_date,
		from_email = excluded.from_email, reply_to_email = excluded.reply_to_email, from_name = excluded.from_name,
		subject = excluded.subject, mailing_list_id = excluded.mailing_list_id, contact_id = excluded.contact_id,
		library_id = excluded.library_id, sample_id = excluded.sample_id, link_type = excluded.link_type,
		-- An expiry that is missing or could not be read is unknown, not
		-- "never": the one read before stays.
		link_expiration = coalesce(excluded.link_expiration, d.link_expiration),
		sent = excluded.sent, failed = excluded.failed, started = excluded.started, bounced = excluded.bounced,
		opened = excluded.opened, skipped = excluded.skipped, finished = excluded.finished,
		complaints = excluded.complaints, blocked = excluded.blocked,
		recipients_synced_at = CASE WHEN
			(d.sent, d.failed, d.started, d.bounced, d.opened, d.skipped, d.finished, d.complaints, d.blocked, d.modified_date)
			IS DISTINCT FROM (excluded.sent, excluded.failed, excluded.started, excluded.bounced, excluded.opened,
			excluded.skipped, excluded.finished, excluded.complaints, excluded.blocked, excluded.modified_date)
			THEN NULL ELSE d.recipients_synced_at END,
		-- A distribution that comes back after it was removed is read again
		-- silently: its invitations are not new.
		recipients_silent = d.recipients_silent OR d.deleted_at IS NOT NULL,
		deleted_at = NULL, synced_at = excluded.synced_at, updated_at = excluded.updated_at,
		seen_run_id = coalesce(excluded.seen_run_id, d.seen_run_id)
	WHERE (d.survey_id, d.parent_distribution_id, d.owner_id, d.organization_id, d.request_status, d.request_type,
		d.send_date, d.created_date, d.modified_date, d.from_email, d.reply_to_email, d.from_name, d.subject,
		d.mailing_list_id, d.contact_id, d.library_id, d.sample_id, d.link_type, d.link_expiration,
		d.sent, d.failed, d.started, d.bounced, d.opened, d.skipped, d.finished, d.complaints, d.blocked, d.deleted_at IS NULL)
		IS DISTINCT FROM (excluded.survey_id, excluded.parent_distribution_id, excluded.owner_id, excluded.organization_id,
		excluded.request_status, excluded.request_type, excluded.send_date, excluded.created_date, excluded.modified_date,
		excluded.from_email, excluded.reply_to_email, excluded.from_name, excluded.subject, excluded.mailing_list_id,
		excluded.contact_id, excluded.library_id, excluded.sample_id, excluded.link_type,
		coalesce(excluded.link_expiration, d.link_expiration), excluded.sent, excluded.failed, excluded.started, excluded.bounced, excluded.opened, excluded.skipped,
		excluded.finished, excluded.complaints, excluded.blocked, true)
	RETURNING d.qualtrics_id, d.survey_id, d.sent, d.failed, d.started, d.bounced, d.opened, d.skipped, d.finished, d.complaints, d.blocked,
		d.link_expiration
), ch AS (
	SELECT up.*, old.qualtrics_id IS NULL AS is_new,
		old.qualtrics_id IS NOT NULL AND old.old_link_expiration IS DISTINCT FROM up.link_expiration AS expiry_changed,
		(old.sent, old.failed, old.started, old.bounced, old.opened, old.skipped, old.finished, old.complaints, old.blocked)
		IS DISTINCT FROM (up.sent, up.failed, up.started, up.bounced, up.opened, up.skipped, up.finished, up.complaints, up.blocked) AS stats_changed
	FROM up LEFT JOIN old USING (qualtrics_id)
), snap AS (
	INSERT INTO distribution_stats (integration_id, distribution_id, at, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked)
	SELECT $1, qualtrics_id, $2, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked
	FROM ch WHERE is_new OR stats_changed
	ON CONFLICT (integration_id, distribution_id, at) DO UPDATE SET sent = excluded.sent, failed = excluded.failed,
		started = excluded.started, bounced = excluded.bounced, opened = excluded.opened, skipped = excluded.skipped,
		finished = excluded.finished, complaints = excluded.complaints, blocked = excluded.blocked
), thin AS (
	-- Snapshots older than a week are thinned to the last of each day, as
	-- the distribution gets a new one: the chart keeps the whole life at a
	-- bounded size, and the cost follows the writes.
	DELETE FROM distribution_stats x USING ch
	WHERE (ch.is_new OR ch.stats_changed) AND x.integration_id = $1 AND x.distribution_id = ch.qualtrics_id
		AND x.at < $2::timestamptz - interval '7 days'
		AND EXISTS (SELECT 1 FROM distribution_stats y WHERE y.integration_id = x.integration_id
			AND y.distribution_id = x.distribution_id AND y.at > x.at AND y.at < date_trunc('day', x.at) + interval '1 day')
)
SELECT qualtrics_id, survey_id, CASE WHEN is_new THEN 'distribution_new' WHEN stats_changed THEN 'distribution_stats' END,
	expiry_changed
FROM ch ORDER BY qualtrics_id`

// inheritExpirySQL moves the stored effective expiry of the recipients that
// inherit their distribution's link expiration (none of their own), for the
// distributions $2 whose expiration changed: its own statement, run only when
// there are any, and driven by their ids, so its cost follows the change. (A
// CTE of the upsert did this, and the planner, told by the statistics that
// almost no recipient lacks an expiry of its own, started from a scan of the
// integration's recipients for every page, changed or not.)
const inheritExpirySQL = `UPDATE recipients r SET expires_at = x.expires_at
	FROM (SELECT d.qualtrics_id, coalesce(d.link_expiration, s.end_date) AS expires_at
		FROM distributions d LEFT JOIN surveys s ON s.integration_id = d.integration_id AND s.qualtrics_id = d.survey_id
		WHERE d.integration_id = $1 AND d.qualtrics_id = ANY($2)) x
	WHERE r.integration_id = $1 AND r.distribution_id = ANY($2) AND r.distribution_id = x.qualtrics_id
		AND r.link_expiration IS NULL AND r.expires_at IS DISTINCT FROM x.expires_at`

// UpsertDistributionsTx writes one page of a survey's distribution listing,
// stores a stats snapshot where the figures changed, and reports what changed.
func UpsertDistributionsTx(ctx context.Context, tx pgx.Tx, integrationID string, page []DistributionInput, now time.Time) (DistributionPage, error) {
	var out DistributionPage
	if len(page) == 0 {
		return out, nil
	}
	if err := createStaging(ctx, tx, "sync_distributions_stage", distributionStaging); err != nil {
		return out, mapErr("upsert distributions: stage", err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"sync_distributions_stage"}, distributionStagingColumns,
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			d := &page[i]
			st := d.Stats
			return []any{i, d.ID, d.SurveyID, d.ParentDistributionID, d.OwnerID, d.OrganizationID, d.RequestStatus,
				d.RequestType, timeArg(d.SendDate), timeArg(d.CreatedDate), timeArg(d.ModifiedDate), d.FromEmail,
				d.ReplyToEmail, d.FromName, d.Subject, d.MailingListID, d.ContactID, d.LibraryID, d.SampleID, d.LinkType,
				timeArg(d.LinkExpiration), st.Sent, st.Failed, st.Started, st.Bounced, st.Opened, st.Skipped,
				st.Finished, st.Complaints, st.Blocked}, nil
		}))
	if err != nil {
		return out, mapErr("upsert distributions: copy", err)
	}
	rows, err := tx.Query(ctx, upsertDistributionsSQL, integrationID, now)
	if err != nil {
		return out, mapErr("upsert distributions", err)
	}
	var expiryChanged []string
	for rows.Next() {
		var id, surveyID string
		var kind *string
		var expiry bool
		if err := rows.Scan(&id, &surveyID, &kind, &expiry); err != nil {
			rows.Close()
			return out, mapErr("upsert distributions", err)
		}
		if kind != nil {
			out.Changes = append(out.Changes, Change{Kind: *kind, SurveyID: surveyID, DistributionID: id})
		}
		if expiry {
			expiryChanged = append(expiryChanged, id)
		}
	}
	if err := rows.Err(); err != nil {
		return out, mapErr("upsert distributions", err)
	}
	if len(expiryChanged) > 0 {
		if _, err := tx.Exec(ctx, inheritExpirySQL, integrationID, expiryChanged); err != nil {
			return out, mapErr("upsert distributions: inherited expiry", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE distributions d SET synced_at = $2, seen_run_id = coalesce(`+currentFullRun+`, d.seen_run_id)
		FROM sync_distributions_stage t
		WHERE d.integration_id = $1 AND d.qualtrics_id = t.qualtrics_id AND `+seenAgain("d"), integrationID, now); err != nil {
		return out, mapErr("upsert distributions: mark seen", err)
	}
	rows, err = tx.Query(ctx, `SELECT d.qualtrics_id FROM distributions d
		WHERE d.integration_id = $1 AND d.qualtrics_id IN (SELECT qualtrics_id FROM sync_distributions_stage)
		AND d.recipients_synced_at IS NULL ORDER BY d.qualtrics_id`, integrationID)
	if err != nil {
		return out, mapErr("upsert distributions: stale recipients", err)
	}
	out.StaleRecipients, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return out, mapErr("upsert distributions: stale recipients", err)
}

// UpsertDistributions is UpsertDistributionsTx in its own transaction.
func (s *Store) UpsertDistributions(ctx context.Context, integrationID string, page []DistributionInput, now time.Time) (out DistributionPage, err error) {
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		out, err = UpsertDistributionsTx(ctx, tx, integrationID, page, now)
		return err
	})
	return out, err
}

// StoredDistribution is a distribution row as the sync left it (tests, tools).
type StoredDistribution struct {
	DistributionInput
	RecipientsSyncedAt *time.Time
	RecipientsWarning  string
	DeletedAt          *time.Time
	Snapshots          int
}

// ListStoredDistributions returns every distribution row of an integration, by id.
func (s *Store) ListStoredDistributions(ctx context.Context, integrationID string) ([]StoredDistribution, error) {
	rows, err := s.pool.Query(ctx, `SELECT qualtrics_id, survey_id, parent_distribution_id, request_type, request_status,
		coalesce(link_expiration, 'epoch'::timestamptz), coalesce(send_date, 'epoch'::timestamptz), subject, mailing_list_id,
		sent, failed, started, bounced, opened, skipped, finished, complaints, blocked,
		recipients_synced_at, recipients_warning, deleted_at,
		(SELECT count(*) FROM distribution_stats s WHERE s.integration_id = d.integration_id AND s.distribution_id = d.qualtrics_id)
		FROM distributions d WHERE integration_id = $1 ORDER BY qualtrics_id`, integrationID)
	if err != nil {
		return nil, mapErr("list stored distributions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredDistribution, error) {
		var v StoredDistribution
		st := &v.Stats
		err := r.Scan(&v.ID, &v.SurveyID, &v.ParentDistributionID, &v.RequestType, &v.RequestStatus, &v.LinkExpiration,
			&v.SendDate, &v.Subject, &v.MailingListID, &st.Sent, &st.Failed, &st.Started, &st.Bounced, &st.Opened, &st.Skipped,
			&st.Finished, &st.Complaints, &st.Blocked, &v.RecipientsSyncedAt, &v.RecipientsWarning, &v.DeletedAt, &v.Snapshots)
		for _, t := range []*time.Time{&v.LinkExpiration, &v.SendDate} {
			if t.Unix() == 0 {
				*t = time.Time{}
			} else {
				*t = t.UTC()
			}
		}
		return v, err
	})
	return out, mapErr("list stored distributions", err)
}

// historyUnavailableSampleSQL reads distributions_history_unavailable_idx:
// the few such distributions, not the integration's every distribution.
const historyUnavailableSampleSQL = `SELECT qualtrics_id FROM distributions
	WHERE integration_id = $1 AND history_unavailable AND deleted_at IS NULL
	ORDER BY recipients_synced_at NULLS FIRST LIMIT 1`

// HistoryUnavailableSample returns one live distribution of the integration
// whose history was unavailable when last read (no XM Directory licence), or
// "" when there is none: a full sync asks Qualtrics for its history once to
// learn whether the brand has it again.
func (s *Store) HistoryUnavailableSample(ctx context.Context, integrationID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, historyUnavailableSampleSQL, integrationID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, mapErr("history unavailable sample", err)
}

// HistoryAvailableAgain marks the integration's distributions whose history
// was unavailable to be read again (the brand has its history back).
func (s *Store) HistoryAvailableAgain(ctx context.Context, integrationID string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE distributions SET history_unavailable = false, recipients_synced_at = NULL
		WHERE integration_id = $1 AND history_unavailable AND deleted_at IS NULL`, integrationID)
	if err != nil {
		return 0, mapErr("history available again", err)
	}
	return tag.RowsAffected(), nil
}
