package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// Freshness says how current an integration's synced data is, so pages can
// warn when Qualtrics has not been reachable for a while.
type Freshness struct {
	Status        microapps.IntegrationStatus
	LastSuccessAt *time.Time
	FullSyncEvery time.Duration
}

// Stale reports whether pages should say the data may be out of date: the
// last sync failed, or the last success is older than two full-sync periods.
func (f Freshness) Stale(now time.Time) bool {
	if f.Status == microapps.IntegrationError {
		return true
	}
	if f.LastSuccessAt == nil || f.FullSyncEvery <= 0 {
		return false
	}
	return now.Sub(*f.LastSuccessAt) > 2*f.FullSyncEvery
}

// IntegrationRef is what pages show about the integration an item comes from.
type IntegrationRef struct {
	ID              string
	Name            string
	FunctionalGroup string
	Icon            string
	Freshness       Freshness
}

// MySurvey is one row of a user's active surveys: the invitation of that
// survey that expires last.
type MySurvey struct {
	Integration    IntegrationRef
	SurveyID       string
	SurveyName     string
	DistributionID string
	Status         string
	SentAt         *time.Time
	ExpiresAt      *time.Time // effective expiry; nil means no end date
	RespondLink    string
}

// finishedStatuses end a survey for its recipient.
const finishedStatusList = `('SurveyFinished', 'SurveyScreenedOut')`

// The user's candidate rows come from the partial email index (finished rows are
// not in it); the "finished through another invitation" check uses the partial
// index of finished rows (migration 0008), so neither scans a survey's recipients.
var myActiveSurveysSQL = `
WITH mine AS (
    SELECT r.integration_id, r.survey_id, r.distribution_id, r.status, r.sent_at, r.respond_link,
           r.expires_at,
           s.name AS survey_name, d.send_date, d.created_date, d.parent_distribution_id <> '' AS is_reminder
    FROM recipients r
    -- A user has a handful of rows: look each one's distribution and survey up
    -- by primary key. (OFFSET 0 keeps the planner from turning these into a
    -- hash join that reads every active survey on every page view.)
    CROSS JOIN LATERAL (
        SELECT d.link_expiration, d.send_date, d.created_date, d.parent_distribution_id
        FROM distributions d
        WHERE d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id
          AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
        OFFSET 0) d
    CROSS JOIN LATERAL (
        SELECT s.name, s.end_date
        FROM surveys s
        WHERE s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id
          AND s.is_active AND s.deleted_at IS NULL
        OFFSET 0) s
    WHERE r.email = $1
      AND r.deleted_at IS NULL
      AND r.status NOT IN ` + finishedStatusList + `
      AND r.status IN ` + toAnswerSQL + `
), latest AS (
    SELECT DISTINCT ON (m.integration_id, m.survey_id) m.*
    FROM mine m
    ORDER BY m.integration_id, m.survey_id, m.expires_at DESC NULLS FIRST,
             m.is_reminder, m.send_date DESC NULLS LAST, m.distribution_id
)
SELECT l.integration_id::text, i.name, i.functional_group, i.icon,
       i.status, i.last_success_at, extract(epoch FROM i.full_sync_every)::float8,
       l.survey_id, l.survey_name, l.distribution_id, l.status, l.sent_at, l.expires_at, l.respond_link
FROM latest l
JOIN integrations i ON i.id = l.integration_id
WHERE (l.expires_at IS NULL OR l.expires_at > $2) AND i.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1
    FROM recipients f
    WHERE f.email = $1 AND f.integration_id = l.integration_id AND f.survey_id = l.survey_id
      AND f.deleted_at IS NULL AND f.status IN ` + finishedStatusList + `)
ORDER BY l.expires_at ASC NULLS LAST, l.survey_name, l.integration_id, l.survey_id`

// MyActiveSurveys lists the surveys email still has to answer across all
// integrations, one row per survey (the invitation that expires last), the
// soonest expiry first. email must already be normalised (trimmed, lower case).
func (s *Store) MyActiveSurveys(ctx context.Context, email string, now time.Time) ([]MySurvey, error) {
	rows, err := s.pool.Query(ctx, myActiveSurveysSQL, email, now)
	if err != nil {
		return nil, mapErr("my active surveys", err)
	}
	return scanMySurveys(rows)
}

// myActiveSurveysAndSummarySQL is the busiest page's one statement: the page
// frame's summary (unread notifications, Brand Admin or not) on every row,
// and the user's surveys, if any, beside it.
var myActiveSurveysAndSummarySQL = `
WITH page AS (` + myActiveSurveysSQL + `)
SELECT sum.unread, sum.is_admin, p.*
FROM (` + userSummarySQL + `) sum (unread, is_admin)
LEFT JOIN page p ON true
ORDER BY p.expires_at ASC NULLS LAST, p.survey_name, p.integration_id, p.survey_id`

// MyActiveSurveysAndSummary is MyActiveSurveys plus the page frame's
// UserSummary in a single statement: the busiest page pays one statement,
// not two.
func (s *Store) MyActiveSurveysAndSummary(ctx context.Context, email string, now time.Time) ([]MySurvey, UserSummary, error) {
	var sum UserSummary
	rows, err := s.pool.Query(ctx, myActiveSurveysAndSummarySQL, email, now)
	if err != nil {
		return nil, sum, mapErr("my active surveys", err)
	}
	defer rows.Close()
	var out []MySurvey
	for rows.Next() {
		var (
			integrationID, name, group, icon, status, surveyID, surveyName, distID, rstatus, link *string
			lastSuccess, sentAt, expiresAt                                                        *time.Time
			every                                                                                 *float64
		)
		if err := rows.Scan(&sum.Unread, &sum.IsAdmin, &integrationID, &name, &group, &icon, &status, &lastSuccess, &every,
			&surveyID, &surveyName, &distID, &rstatus, &sentAt, &expiresAt, &link); err != nil {
			return nil, sum, mapErr("my active surveys", err)
		}
		if integrationID == nil {
			continue // the summary row of a user without active surveys
		}
		m := MySurvey{SurveyID: *surveyID, SurveyName: *surveyName, DistributionID: *distID, Status: *rstatus,
			SentAt: sentAt, ExpiresAt: expiresAt, RespondLink: *link}
		m.Integration.ID, m.Integration.Name, m.Integration.FunctionalGroup, m.Integration.Icon = *integrationID, *name, *group, *icon
		m.Integration.Freshness.Status, m.Integration.Freshness.LastSuccessAt = microapps.IntegrationStatus(*status), lastSuccess
		if every != nil {
			m.Integration.Freshness.FullSyncEvery = seconds(*every)
		}
		out = append(out, m)
	}
	return out, sum, mapErr("my active surveys", rows.Err())
}

func scanMySurveys(rows pgx.Rows) ([]MySurvey, error) {
	defer rows.Close()
	var out []MySurvey
	for rows.Next() {
		var m MySurvey
		var every float64
		if err := rows.Scan(&m.Integration.ID, &m.Integration.Name, &m.Integration.FunctionalGroup, &m.Integration.Icon,
			&m.Integration.Freshness.Status, &m.Integration.Freshness.LastSuccessAt, &every,
			&m.SurveyID, &m.SurveyName, &m.DistributionID, &m.Status, &m.SentAt, &m.ExpiresAt, &m.RespondLink); err != nil {
			return nil, mapErr("my active surveys", err)
		}
		m.Integration.Freshness.FullSyncEvery = seconds(every)
		out = append(out, m)
	}
	return out, mapErr("my active surveys", rows.Err())
}

// MySurveyDetail is the Survey details page of one of the user's invitations.
type MySurveyDetail struct {
	Summary        UserSummary // the page frame's, even when the invitation is not found
	Integration    IntegrationRef
	SurveyID       string
	SurveyName     string
	SurveyActive   bool
	DistributionID string
	RequestType    string
	Status         string
	SentAt         *time.Time
	OpenedAt       *time.Time
	StartedAt      *time.Time
	CompletedAt    *time.Time
	ExpiresAt      *time.Time
	FromName       string
	FromEmail      string
	RespondLink    string
	// FinishedElsewhere is true when the user finished this survey through
	// another invitation or reminder.
	FinishedElsewhere bool
}

const mySurveyDetailSQL = `
SELECT i.id::text, i.name, i.functional_group, i.icon,
       i.status, i.last_success_at, extract(epoch FROM i.full_sync_every)::float8,
       s.qualtrics_id, s.name, s.is_active AND s.deleted_at IS NULL,
       d.qualtrics_id, d.request_type, r.status, r.sent_at, r.opened_at, r.response_started_at, r.response_completed_at,
       r.expires_at, d.from_name, d.from_email, r.respond_link,
       EXISTS (
         SELECT 1 FROM recipients f
         WHERE f.email = r.email AND f.integration_id = r.integration_id AND f.survey_id = r.survey_id
           AND f.deleted_at IS NULL AND f.status IN ` + finishedStatusList + `)
FROM recipients r
JOIN distributions d ON d.integration_id = r.integration_id AND d.qualtrics_id = r.distribution_id
JOIN surveys s ON s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id
JOIN integrations i ON i.id = r.integration_id
WHERE r.integration_id = $1 AND r.distribution_id = $2 AND r.email = $3
  AND r.deleted_at IS NULL AND d.deleted_at IS NULL AND i.deleted_at IS NULL AND d.request_type <> 'TestEmail'
ORDER BY (r.status IN ` + finishedStatusList + `) DESC, r.link_expiration DESC NULLS FIRST, r.contact_id
LIMIT 1`

// MySurveyDetail returns email's invitation in one distribution, or
// ErrNotFound when the user is not one of its recipients (whether or not the
// distribution exists), with the page frame's summary in either case: the
// two statements go in one batch, one round trip.
func (s *Store) MySurveyDetail(ctx context.Context, email, integrationID, distributionID string, now time.Time) (MySurveyDetail, error) {
	var m MySurveyDetail
	var every float64
	b := &pgx.Batch{}
	b.Queue(userSummarySQL, email, now).QueryRow(func(row pgx.Row) error {
		return row.Scan(&m.Summary.Unread, &m.Summary.IsAdmin)
	})
	b.Queue(mySurveyDetailSQL, integrationID, distributionID, email).QueryRow(func(row pgx.Row) error {
		return row.Scan(
			&m.Integration.ID, &m.Integration.Name, &m.Integration.FunctionalGroup, &m.Integration.Icon,
			&m.Integration.Freshness.Status, &m.Integration.Freshness.LastSuccessAt, &every,
			&m.SurveyID, &m.SurveyName, &m.SurveyActive,
			&m.DistributionID, &m.RequestType, &m.Status, &m.SentAt, &m.OpenedAt, &m.StartedAt, &m.CompletedAt,
			&m.ExpiresAt, &m.FromName, &m.FromEmail, &m.RespondLink, &m.FinishedElsewhere)
	})
	err := s.pool.SendBatch(ctx, b).Close()
	m.Integration.Freshness.FullSyncEvery = seconds(every)
	return m, mapErr("my survey detail", err)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
