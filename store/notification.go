package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// Notification is one item of a user's feed. Data holds what the templates need
// to render it in any language; its keys depend on Kind.
type Notification struct {
	ID             int64
	IntegrationID  string
	Kind           microapps.NotificationKind
	DedupeKey      string
	Email          string
	SurveyID       string
	DistributionID string
	ContactID      string
	Data           json.RawMessage
	CreatedAt      time.Time
	ExpiresAt      time.Time
	ReadAt         *time.Time
}

// RaiseOptions are what every rule query needs. Times are computed by the
// caller so tests control the clock.
type RaiseOptions struct {
	// IntegrationID limits the time-based rules to one integration; "" means
	// every integration. The change-based rule always needs one.
	IntegrationID string
	Now           time.Time
	// Window is how long before an expiry the notice goes out.
	Window time.Duration
	// FeedLifetime is how long a notification stays in the feed.
	FeedLifetime time.Duration
	// Email enqueues an email delivery for each notification raised; Webhook
	// a webhook delivery when the integration has a webhook URL.
	Email, Webhook bool
}

// Raised says what one rule query inserted.
type Raised struct {
	Count int
	// DeliveryIDs are the deliveries enqueued for the new notifications, for
	// the caller to hand to the job queue in the same transaction.
	DeliveryIDs []int64
}

// RecipientRef names one recipient row of an integration.
type RecipientRef struct {
	DistributionID string
	ContactID      string
}

// activeRecipient is the domain's "this survey is active for this recipient",
// less the expiry test, which each rule states with its own bound: the
// invitation reached them (the reached statuses of store/status.go) and they have not
// finished it. It expects r (recipients), d (distributions), s (surveys) and
// i (integrations).
var activeRecipient = `i.first_full_sync_at IS NOT NULL AND i.deleted_at IS NULL
	AND s.is_active AND s.deleted_at IS NULL
	AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
	AND r.deleted_at IS NULL AND r.email <> ''
	AND r.status IN ` + toAnswerSQL

// effectiveExpiry is stored on the row by the merge (and kept current when
// the distribution's or the survey's dates change): link expiration, else the
// distribution's, else the survey's end date.
const effectiveExpiry = `r.expires_at`

// utc renders a timestamp as RFC 3339 in UTC (null stays null), the format the
// pages parse from notifications.data.
func utc(expr string) string {
	return `to_char(` + expr + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`
}

// raiseTail inserts the rows of the CTE "cand" (which must have the columns
// integration_id, kind, dedupe_key, email, survey_id, distribution_id,
// contact_id, data) as notifications, skipping keys already raised, then
// enqueues their deliveries. Rows are inserted in key order so concurrent
// raisers wait on each other in the same order and cannot deadlock.
// Parameters: $1 now, $2 feed expiry, $3 email deliveries on, $4 webhook
// deliveries on; the rules' own start at $5.
const raiseTail = `, raised AS (
	INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, contact_id, data, created_at, expires_at)
	SELECT integration_id, kind, dedupe_key, email, survey_id, distribution_id, contact_id, data, $1, $2
	FROM cand ORDER BY dedupe_key
	ON CONFLICT (dedupe_key) DO NOTHING
	RETURNING id, integration_id, dedupe_key
), dl AS (
	INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key, created_at, updated_at)
	SELECT n.id, n.integration_id, ch.channel,
		'ntf_' || left(encode(sha256(convert_to(ch.channel || ':' || n.dedupe_key, 'UTF8')), 'hex'), 40), $1, $1
	FROM raised n
	JOIN integrations wi ON wi.id = n.integration_id
	CROSS JOIN LATERAL (VALUES ('email', $3::boolean), ('webhook', $4::boolean AND wi.webhook_url <> '')) AS ch (channel, enabled)
	WHERE ch.enabled
	ORDER BY n.id, ch.channel
	ON CONFLICT (idempotency_key) DO NOTHING
	RETURNING id
)
SELECT (SELECT count(*) FROM raised)::int, coalesce((SELECT array_agg(id ORDER BY id) FROM dl), '{}')`

func runRaise(ctx context.Context, tx pgx.Tx, op, sql string, args ...any) (Raised, error) {
	var r Raised
	err := tx.QueryRow(ctx, sql, args...).Scan(&r.Count, &r.DeliveryIDs)
	return r, mapErr(op, err)
}

// new_survey: one per integration, survey and email; the recipient rows named
// by the sync's changes that are delivered and active, invitations only
// (a reminder never announces a survey again). Several invitations of one
// survey in one page give one notification, with the link expiring last.
var raiseNewSurveySQL = `WITH c AS (
	SELECT * FROM unnest($6::text[], $7::text[]) AS c (distribution_id, contact_id)
), pick AS (
	SELECT DISTINCT ON (r.survey_id, r.email)
		r.integration_id, r.survey_id, r.email, r.distribution_id, r.contact_id, r.respond_link,
		s.name AS survey_name, i.functional_group, ` + effectiveExpiry + ` AS expiry
	FROM c
	JOIN recipients r ON r.integration_id = $5 AND r.distribution_id = c.distribution_id AND r.contact_id = c.contact_id
	JOIN distributions d ON d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id
	JOIN surveys s ON s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id
	JOIN integrations i ON i.id = r.integration_id
	WHERE ` + activeRecipient + `
		AND d.parent_distribution_id = ''
		AND (` + effectiveExpiry + ` IS NULL OR ` + effectiveExpiry + ` > $1)
		AND (s.end_date IS NULL OR s.end_date > $1) -- an ended survey is never announced
	ORDER BY r.survey_id, r.email, expiry DESC NULLS FIRST, r.distribution_id, r.contact_id
), cand AS (
	SELECT integration_id, 'new_survey' AS kind,
		'new_survey:' || integration_id || ':' || survey_id || ':' || email AS dedupe_key,
		email, survey_id, distribution_id, contact_id,
		jsonb_build_object('surveyName', survey_name, 'functionalGroup', functional_group,
			'expiresAt', ` + utc("expiry") + `, 'respondLink', respond_link) AS data
	FROM pick
)` + raiseTail

// RaiseNewSurveyTx raises new_survey notifications for the recipient rows a
// sync found delivered, inside the sync's transaction.
func (s *Store) RaiseNewSurveyTx(ctx context.Context, tx pgx.Tx, o RaiseOptions, refs []RecipientRef) (Raised, error) {
	if len(refs) == 0 || !ValidUUID(o.IntegrationID) {
		return Raised{DeliveryIDs: []int64{}}, nil
	}
	dists := make([]string, len(refs))
	contacts := make([]string, len(refs))
	for i, r := range refs {
		dists[i], contacts[i] = r.DistributionID, r.ContactID
	}
	return runRaise(ctx, tx, "raise new survey", raiseNewSurveySQL,
		o.Now, o.Now.Add(o.FeedLifetime), o.Email, o.Webhook, o.IntegrationID, dists, contacts)
}

// survey_expiring: per integration, survey and email, the active invitation
// expiring last (as My active surveys shows it); raised once its expiry is
// within the window. A user who finished the survey through any of its rows
// gets nothing. The expiry is part of the key: a link extended later may be
// announced again when the new expiry comes near.
//
// It reads only the rows whose stored expiry falls inside the window, an
// index range per integration (recipients_expiring_idx holds just the
// reached, unfinished rows with an expiry), and drops first those whose
// notice exists (a probe of the dedupe key), so a check that finds nothing
// new costs the window's size in index entries and no more. Among a user's
// new in-window rows of a survey, the one expiring last is announced unless
// another active invitation of the same survey expires later or never, which
// a look-up of the user in each of the survey's distributions rules out. Its
// cost follows the window, not the table.
var raiseExpiringSQL = `WITH w AS MATERIALIZED (
	SELECT r.integration_id, r.survey_id, r.email, r.distribution_id, r.contact_id, r.respond_link, r.expires_at,
		i.functional_group,
		'survey_expiring:' || r.integration_id || ':' || r.survey_id || ':' || r.email || ':' || extract(epoch FROM r.expires_at)::bigint AS dedupe_key
	FROM integrations i
	CROSS JOIN LATERAL (
		SELECT r.integration_id, r.survey_id, r.email, r.distribution_id, r.contact_id, r.respond_link, r.expires_at
		FROM recipients r
		WHERE r.integration_id = i.id
			AND r.deleted_at IS NULL AND r.expires_at IS NOT NULL AND r.expiry_settled_at IS DISTINCT FROM r.expires_at
			AND r.status IN ` + toAnswerSQL + `
			AND r.expires_at > $1 AND r.expires_at <= $6 AND r.email <> ''
	) r
	WHERE ($5::uuid IS NULL OR i.id = $5::uuid) AND i.first_full_sync_at IS NOT NULL AND i.deleted_at IS NULL
), fresh AS (
	-- Not announced yet, and not finished through another invitation: both
	-- are exact probes (the dedupe key, recipients_finished_idx).
	SELECT * FROM w
	WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.dedupe_key = w.dedupe_key)
		AND NOT EXISTS (SELECT 1 FROM recipients f
			WHERE f.email = w.email AND f.integration_id = w.integration_id AND f.survey_id = w.survey_id
				AND f.deleted_at IS NULL AND f.status IN ` + finishedStatusList + `)
), live AS MATERIALIZED (
	-- Each row's distribution and survey by primary key (OFFSET 0 keeps the
	-- planner from reading all of an integration's distributions per row).
	SELECT r.*, s.name AS survey_name
	FROM fresh r
	CROSS JOIN LATERAL (SELECT 1 FROM distributions d
		WHERE d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id
			AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail' OFFSET 0) d
	CROSS JOIN LATERAL (SELECT s.name FROM surveys s
		WHERE s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id
			AND s.is_active AND s.deleted_at IS NULL OFFSET 0) s
), settled AS (
	-- Every in-window row whose notice is decided now: announced already,
	-- finished through another invitation, or of a live invitation (the one
	-- announced, or one that a later invitation of the user supersedes). Rows
	-- of an inactive survey or a dead invitation stay for a later check.
	UPDATE recipients r SET expiry_settled_at = r.expires_at
	FROM w
	WHERE r.integration_id = w.integration_id AND r.distribution_id = w.distribution_id AND r.contact_id = w.contact_id
		AND r.expires_at = w.expires_at
		AND (NOT EXISTS (SELECT 1 FROM fresh f WHERE f.integration_id = w.integration_id
				AND f.distribution_id = w.distribution_id AND f.contact_id = w.contact_id)
			OR EXISTS (SELECT 1 FROM live l WHERE l.integration_id = w.integration_id
				AND l.distribution_id = w.distribution_id AND l.contact_id = w.contact_id))
), pick AS (
	SELECT DISTINCT ON (r.integration_id, r.survey_id, r.email)
		r.integration_id, r.survey_id, r.email, r.distribution_id, r.contact_id, r.respond_link, r.dedupe_key,
		r.survey_name, r.functional_group, r.expires_at AS expiry
	FROM live r
	ORDER BY r.integration_id, r.survey_id, r.email, r.expires_at DESC, r.distribution_id, r.contact_id
), cand AS (
	SELECT p.integration_id, 'survey_expiring' AS kind, p.dedupe_key,
		p.email, p.survey_id, p.distribution_id, p.contact_id,
		jsonb_build_object('surveyName', p.survey_name, 'functionalGroup', p.functional_group,
			'expiresAt', ` + utc("p.expiry") + `, 'respondLink', p.respond_link) AS data
	FROM pick p
	-- No other active invitation of the survey expires later (or never): the
	-- survey's few distributions, then the user's row in each by email
	-- (recipients_distribution_email_idx), never all of the user's rows.
	WHERE NOT EXISTS (SELECT 1 FROM distributions od
			JOIN recipients o ON o.integration_id = od.integration_id AND o.distribution_id = od.qualtrics_id
				AND o.email = p.email AND o.deleted_at IS NULL
			WHERE od.integration_id = p.integration_id AND od.survey_id = p.survey_id
				AND od.deleted_at IS NULL AND od.request_type <> 'TestEmail'
				AND o.status IN ` + toAnswerSQL + `
				AND (o.expires_at IS NULL OR o.expires_at > p.expiry))
)` + raiseTail

// RaiseSurveyExpiringTx raises survey_expiring notifications for recipients
// whose link expires within the window.
func (s *Store) RaiseSurveyExpiringTx(ctx context.Context, tx pgx.Tx, o RaiseOptions) (Raised, error) {
	return runRaise(ctx, tx, "raise survey expiring", raiseExpiringSQL,
		o.Now, o.Now.Add(o.FeedLifetime), o.Email, o.Webhook, nullUUID(o.IntegrationID), o.Now.Add(o.Window))
}

// survey_statistics: to every Brand Admin of the integration, for each
// invitation (not a reminder, not a test email) of an active survey whose link
// expires within the window. Its "Review distributions" link is not stored:
// emails, chat, the feed and the APIs build it when they show it, with the
// one deep-link builder (internal/links) the pages use.
var raiseStatisticsSQL = `WITH pick AS (
	SELECT d.integration_id, d.survey_id, d.qualtrics_id AS distribution_id, ba.email,
		s.name AS survey_name, i.functional_group, d.send_date, d.sent, d.finished, d.link_expiration
	FROM distributions d
	JOIN surveys s ON s.integration_id = d.integration_id AND s.qualtrics_id = d.survey_id
	JOIN integrations i ON i.id = d.integration_id
	JOIN brand_admins ba ON ba.integration_id = d.integration_id
	WHERE ($5::uuid IS NULL OR d.integration_id = $5::uuid)
		AND i.first_full_sync_at IS NOT NULL AND i.deleted_at IS NULL
		AND d.deleted_at IS NULL AND d.link_expiration IS NOT NULL
		AND d.link_expiration > $1 AND d.link_expiration <= $6
		AND d.request_type <> 'TestEmail' AND d.parent_distribution_id = ''
		AND s.is_active AND s.deleted_at IS NULL
), cand AS (
	SELECT integration_id, 'survey_statistics' AS kind,
		'survey_statistics:' || integration_id || ':' || distribution_id || ':' || email AS dedupe_key,
		email, survey_id, distribution_id, '' AS contact_id,
		jsonb_build_object('surveyName', survey_name, 'functionalGroup', functional_group,
			'sentAt', ` + utc("send_date") + `, 'sent', sent, 'finished', finished,
			'expiresAt', ` + utc("link_expiration") + `) AS data
	FROM pick
)` + raiseTail

// RaiseSurveyStatisticsTx raises survey_statistics notifications for
// distributions whose link expires within the window.
func (s *Store) RaiseSurveyStatisticsTx(ctx context.Context, tx pgx.Tx, o RaiseOptions) (Raised, error) {
	return runRaise(ctx, tx, "raise survey statistics", raiseStatisticsSQL,
		o.Now, o.Now.Add(o.FeedLifetime), o.Email, o.Webhook, nullUUID(o.IntegrationID), o.Now.Add(o.Window))
}

func nullUUID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

const notificationColumns = `id, integration_id, kind, dedupe_key, email, survey_id, distribution_id, contact_id,
	data, created_at, expires_at, read_at`

func scanNotification(row pgx.Row) (Notification, error) {
	var n Notification
	err := row.Scan(&n.ID, &n.IntegrationID, &n.Kind, &n.DedupeKey, &n.Email, &n.SurveyID, &n.DistributionID, &n.ContactID,
		&n.Data, &n.CreatedAt, &n.ExpiresAt, &n.ReadAt)
	return n, err
}

// ListIntegrationNotifications returns an integration's notifications, newest
// first, for admins and tests; the user's feed is read elsewhere.
func (s *Store) ListIntegrationNotifications(ctx context.Context, integrationID string, limit int) ([]Notification, error) {
	if !ValidUUID(integrationID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE integration_id = $1 ORDER BY id DESC LIMIT $2`, integrationID, limit)
	if err != nil {
		return nil, mapErr("list notifications", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
	return out, mapErr("list notifications", err)
}
