package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// The admin read models join brand_admins on the caller's email in the same
// query, so a caller who is not Brand Admin of the integration gets
// ErrNotFound or no rows, never another tenant's data.

// AdminIntegration is an integration the user administers, with what deep
// links need.
type AdminIntegration struct {
	IntegrationRef
	BaseURL      string
	BrandBaseURL string
	DeepLinks    map[string]string
}

const integrationCols = `i.id::text, i.name, i.functional_group, i.icon,
       i.status, i.last_success_at, extract(epoch FROM i.full_sync_every)::float8,
       i.base_url, i.brand_base_url, i.deep_links`

func scanAdminIntegration(a *AdminIntegration, every *float64, links *[]byte) []any {
	return []any{&a.ID, &a.Name, &a.FunctionalGroup, &a.Icon,
		&a.Freshness.Status, &a.Freshness.LastSuccessAt, every,
		&a.BaseURL, &a.BrandBaseURL, links}
}

func (a *AdminIntegration) finish(every float64, links []byte) {
	a.Freshness.FullSyncEvery = seconds(every)
	a.DeepLinks = map[string]string{}
	if len(links) > 0 {
		// Templates are strings; anything else in the document is ignored.
		var raw map[string]any
		if json.Unmarshal(links, &raw) == nil {
			for k, v := range raw {
				if s, ok := v.(string); ok {
					a.DeepLinks[k] = s
				}
			}
		}
	}
}

// OpenSurveysQuery selects a page of open surveys.
type OpenSurveysQuery struct {
	Email  string
	Search string // case-insensitive substring of the survey name; "" for all
	Limit  int
	Offset int
}

// OpenSurvey is an active, unexpired survey of an integration the user administers.
type OpenSurvey struct {
	Integration IntegrationRef
	SurveyID    string
	Name        string
	EndDate     *time.Time
	Responses   int
	Sent        int
	Finished    int
}

// The Open surveys page's statements, sent in one batch (one round trip):
// the page frame's summary (userSummarySQL), the integrations the user
// administers (for the empty state and the stale notes), the total, and the
// page's surveys (surveys_open_idx) with the figures of those 50 only: the
// figures of every open survey of a large integration were summed on every
// view before. The total is a count of the same index entries.
//
// $1 email, $2 now, $3 search (LIKE-escaped), $4 limit, $5 offset.
const (
	openSurveysWhere = `FROM brand_admins b
    JOIN surveys s ON s.integration_id = b.integration_id
    WHERE b.email = $1
      AND s.is_active AND s.deleted_at IS NULL
      AND (s.end_date IS NULL OR s.end_date > $2)
      AND ($3 = '' OR s.name ILIKE '%' || $3 || '%' ESCAPE '\')`
	adminIntegrationsSQL = `SELECT ` + integrationRefCols + `
FROM brand_admins b JOIN integrations i ON i.id = b.integration_id
WHERE b.email = $1
ORDER BY i.name, i.id`
	openSurveysCountSQL = `SELECT count(*) ` + openSurveysWhere
	openSurveysSQL      = `
WITH page AS (
    SELECT s.integration_id, s.qualtrics_id, s.name, s.end_date, s.responses_auditable
    ` + openSurveysWhere + `
    ORDER BY s.end_date ASC NULLS LAST, s.name, s.integration_id, s.qualtrics_id
    LIMIT $4 OFFSET $5
)
SELECT ` + integrationRefCols + `,
       p.qualtrics_id, p.name, p.end_date, p.responses_auditable,
       coalesce(st.sent, 0), coalesce(st.finished, 0)
FROM page p
JOIN integrations i ON i.id = p.integration_id
LEFT JOIN LATERAL (
    SELECT sum(d.sent)::int AS sent, sum(d.finished)::int AS finished
    FROM distributions d
    WHERE d.integration_id = p.integration_id AND d.survey_id = p.qualtrics_id
      AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
) st ON true
ORDER BY p.end_date ASC NULLS LAST, p.name, p.integration_id, p.qualtrics_id`
)

// integrationRefCols is an integration (alias i) as scanRef reads it.
const integrationRefCols = `i.id::text, i.name, i.functional_group, i.icon,
       i.status, i.last_success_at, extract(epoch FROM i.full_sync_every)::float8`

// scanRef returns the destinations of integrationRefCols; call the returned
// function after the scan.
func scanRef(r *IntegrationRef) ([]any, func()) {
	var every float64
	return []any{&r.ID, &r.Name, &r.FunctionalGroup, &r.Icon, &r.Freshness.Status, &r.Freshness.LastSuccessAt, &every},
		func() { r.Freshness.FullSyncEvery = seconds(every) }
}

// OpenSurveysPage is what the Open surveys page shows.
type OpenSurveysPage struct {
	Summary      UserSummary      // the page frame's
	Integrations []IntegrationRef // the integrations the user administers, by name
	Rows         []OpenSurvey
	Total        int // open surveys matching the search, on every page
}

// OpenSurveys returns a page of the active, unexpired surveys of the
// integrations q.Email administers, the soonest end date first, how many
// there are in all, the integrations and the page frame's summary, in one
// round trip.
func (s *Store) OpenSurveys(ctx context.Context, q OpenSurveysQuery, now time.Time) (OpenSurveysPage, error) {
	var p OpenSurveysPage
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Offset < 0 {
		q.Offset = 0
	}
	search := escapeLike(q.Search)
	b := &pgx.Batch{}
	b.Queue(userSummarySQL, q.Email, now).QueryRow(func(row pgx.Row) error {
		return row.Scan(&p.Summary.Unread, &p.Summary.IsAdmin)
	})
	b.Queue(adminIntegrationsSQL, q.Email).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r IntegrationRef
			dest, done := scanRef(&r)
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			done()
			p.Integrations = append(p.Integrations, r)
		}
		return rows.Err()
	})
	b.Queue(openSurveysCountSQL, q.Email, now, search).QueryRow(func(row pgx.Row) error {
		return row.Scan(&p.Total)
	})
	b.Queue(openSurveysSQL, q.Email, now, search, q.Limit, q.Offset).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var o OpenSurvey
			dest, done := scanRef(&o.Integration)
			if err := rows.Scan(append(dest, &o.SurveyID, &o.Name, &o.EndDate, &o.Responses, &o.Sent, &o.Finished)...); err != nil {
				return err
			}
			done()
			p.Rows = append(p.Rows, o)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return p, mapErr("open surveys", err)
	}
	return p, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.TrimSpace(s))
}

// SurveyResult is a survey seen by one of its Brand Admins, with its distributions.
type SurveyResult struct {
	Integration        AdminIntegration
	SurveyID           string
	Name               string
	IsActive           bool
	Deleted            bool
	StartDate          *time.Time
	EndDate            *time.Time
	ResponsesAuditable int
	ResponsesGenerated int
	ResponsesDeleted   int
	Distributions      []DistributionSummary
}

// DistributionSummary is one distribution in a survey's list.
type DistributionSummary struct {
	ID                   string
	ParentDistributionID string
	RequestType          string
	RequestStatus        string
	Subject              string
	SendDate             *time.Time
	CreatedDate          *time.Time
	LinkExpiration       *time.Time
	Sent                 int
	Opened               int
	Started              int
	Finished             int
}

// SurveyResultsQuery asks for the Survey results page: a survey of an
// integration the caller administers, its distributions, and a page of one
// distribution's recipients.
type SurveyResultsQuery struct {
	Email         string // the Brand Admin asking
	IntegrationID string
	SurveyID      string
	// Recipients pages the selected distribution (DistributionID, or the
	// newest one when "").
	Recipients RecipientsQuery
}

// SurveyResultsPage is what the Survey results page shows.
type SurveyResultsPage struct {
	Summary UserSummary // the page frame's, even when the survey is not found
	SurveyResult
	// Selected is the distribution whose recipients are listed: the one
	// asked for, or the newest; "" when it is not the survey's (or the
	// survey has none).
	Selected   string
	Recipients RecipientsPage
}

// RecipientsQuery selects a page of a distribution's recipients, by email
// then contact id, after the cursor (AfterEmail, AfterContactID) when one is
// given: keyset paging on recipients_distribution_email_idx, so a page costs
// the same on the first page of a 100-recipient distribution and deep into a
// 100,000-recipient one. No total is counted: that would read every matching
// row of the distribution on every view.
type RecipientsQuery struct {
	DistributionID string
	Statuses       []string // Qualtrics statuses to keep; empty keeps all
	Limit          int
	AfterEmail     string
	AfterContactID string // "" with AfterEmail "": the first page
	// Before turns the cursor around: the page that ends just before it.
	Before bool
}

// RecipientsPage is one page of a distribution's recipients, by email. More
// says rows exist beyond it in the direction asked (after its last row, or
// before its first one when Before was asked).
type RecipientsPage struct {
	Rows []RecipientRow
	More bool
}

// RecipientRow is one recipient in the Survey results table.
type RecipientRow struct {
	ContactID   string
	Email       string
	FirstName   string
	LastName    string
	Status      string
	SentAt      *time.Time
	OpenedAt    *time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
}

// LatestAt is the most recent thing that happened to the recipient.
func (r RecipientRow) LatestAt() *time.Time {
	for _, t := range []*time.Time{r.CompletedAt, r.StartedAt, r.OpenedAt, r.SentAt} {
		if t != nil {
			return t
		}
	}
	return nil
}

// The Survey results page's statements, sent in one batch (one round trip,
// each decoded natively; a single statement aggregating JSON cost more to
// decode than the round trips it saved): the page frame's summary with the
// survey (only for one of its integration's Brand Admins), its distributions
// newest first, and a page of the selected one's recipients by keyset on
// recipients_distribution_email_idx.
//
// surveyResultSQL: $1 email, $2 now (the summary's), $3 integration, $4 survey.
var surveyResultSQL = `
SELECT sum.unread, sum.is_admin, sv.*
FROM (` + userSummarySQL + `) sum (unread, is_admin)
LEFT JOIN (
    SELECT ` + integrationCols + `,
           s.qualtrics_id, s.name AS survey_name, s.is_active, s.deleted_at IS NOT NULL, s.start_date, s.end_date,
           s.responses_auditable, s.responses_generated, s.responses_deleted
    FROM brand_admins b
    JOIN integrations i ON i.id = b.integration_id
    JOIN surveys s ON s.integration_id = b.integration_id
    WHERE b.integration_id = $3 AND b.email = $1 AND s.qualtrics_id = $4
) sv ON true`

// surveyDistributionsFrom is a survey's listed distributions, for a Brand
// Admin of its integration only: $1 integration, $2 survey, $3 email.
const surveyDistributionsFrom = `FROM distributions d
WHERE d.integration_id = $1 AND d.survey_id = $2 AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
  AND EXISTS (SELECT 1 FROM brand_admins b WHERE b.integration_id = $1 AND b.email = $3)`

const newestFirst = `ORDER BY d.send_date DESC NULLS LAST, d.created_date DESC NULLS LAST, d.qualtrics_id`

const surveyDistributionsSQL = `SELECT d.qualtrics_id, d.parent_distribution_id, d.request_type, d.request_status, d.subject,
       d.send_date, d.created_date, d.link_expiration, d.sent, d.opened, d.started, d.finished
` + surveyDistributionsFrom + `
` + newestFirst

// surveyRecipientsSQL is a page of the selected distribution's recipients:
// $4 when it is one of the survey's distributions, the newest when $4 is
// ""; $5 statuses (empty: all), $6 rows to read (a page and one), $7/$8 the
// keyset cursor.
const surveyRecipientsSQL = `SELECT r.contact_id, r.email, r.first_name, r.last_name, r.status,
       r.sent_at, r.opened_at, r.response_started_at, r.response_completed_at
FROM recipients r
WHERE r.integration_id = $1 AND r.deleted_at IS NULL
  AND r.distribution_id = (SELECT d.qualtrics_id ` + surveyDistributionsFrom + ` AND ($4 = '' OR d.qualtrics_id = $4)
      ` + newestFirst + ` LIMIT 1)
  AND (cardinality($5::text[]) = 0 OR r.status = ANY ($5::text[]))
  AND (r.email, r.contact_id) > ($7, $8)
ORDER BY r.email, r.contact_id
LIMIT $6`

// surveyRecipientsBeforeSQL reads the page that ends before the cursor: the
// same index walked backwards.
var surveyRecipientsBeforeSQL = strings.NewReplacer(
	"(r.email, r.contact_id) > ($7, $8)", "(r.email, r.contact_id) < ($7, $8)",
	"ORDER BY r.email, r.contact_id", "ORDER BY r.email DESC, r.contact_id DESC",
).Replace(surveyRecipientsSQL)

// SurveyResults returns the Survey results page in one round trip, or
// ErrNotFound (with the page frame's summary still filled in) when the survey
// does not exist or the caller is not Brand Admin of its integration.
func (s *Store) SurveyResults(ctx context.Context, q SurveyResultsQuery, now time.Time) (SurveyResultsPage, error) {
	var p SurveyResultsPage
	rq := q.Recipients
	if rq.Limit <= 0 {
		rq.Limit = 50
	}
	if rq.Statuses == nil {
		rq.Statuses = []string{}
	}
	recipientsSQL := surveyRecipientsSQL
	if rq.Before {
		recipientsSQL = surveyRecipientsBeforeSQL
	}
	var (
		r                                                     = &p.SurveyResult
		a                                                     = &r.Integration
		integrationID, name, group, icon, status, base, brand *string
		surveyID, surveyName                                  *string
		active, deleted                                       *bool
		auditable, generated, deletedResponses                *int
		every                                                 *float64
		links                                                 []byte
	)
	b := &pgx.Batch{}
	b.Queue(surveyResultSQL, q.Email, now, q.IntegrationID, q.SurveyID).QueryRow(func(row pgx.Row) error {
		return row.Scan(&p.Summary.Unread, &p.Summary.IsAdmin,
			&integrationID, &name, &group, &icon, &status, &a.Freshness.LastSuccessAt, &every, &base, &brand, &links,
			&surveyID, &surveyName, &active, &deleted, &r.StartDate, &r.EndDate, &auditable, &generated, &deletedResponses)
	})
	b.Queue(surveyDistributionsSQL, q.IntegrationID, q.SurveyID, q.Email).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var d DistributionSummary
			if err := rows.Scan(&d.ID, &d.ParentDistributionID, &d.RequestType, &d.RequestStatus, &d.Subject,
				&d.SendDate, &d.CreatedDate, &d.LinkExpiration, &d.Sent, &d.Opened, &d.Started, &d.Finished); err != nil {
				return err
			}
			r.Distributions = append(r.Distributions, d)
		}
		return rows.Err()
	})
	b.Queue(recipientsSQL, q.IntegrationID, q.SurveyID, q.Email, rq.DistributionID, rq.Statuses,
		rq.Limit+1, rq.AfterEmail, rq.AfterContactID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var rr RecipientRow
			if err := rows.Scan(&rr.ContactID, &rr.Email, &rr.FirstName, &rr.LastName, &rr.Status,
				&rr.SentAt, &rr.OpenedAt, &rr.StartedAt, &rr.CompletedAt); err != nil {
				return err
			}
			p.Recipients.Rows = append(p.Recipients.Rows, rr)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return p, mapErr("survey results", err)
	}
	if integrationID == nil {
		return p, mapErr("survey results", pgx.ErrNoRows)
	}
	a.ID, a.Name, a.FunctionalGroup, a.Icon, a.Freshness.Status = *integrationID, *name, *group, *icon, microapps.IntegrationStatus(*status)
	a.BaseURL, a.BrandBaseURL = *base, *brand
	a.finish(*every, links)
	r.SurveyID, r.Name, r.IsActive, r.Deleted = *surveyID, *surveyName, *active, *deleted
	r.ResponsesAuditable, r.ResponsesGenerated, r.ResponsesDeleted = *auditable, *generated, *deletedResponses
	// The selection, as surveyRecipientsSQL made it.
	for i, d := range r.Distributions {
		if d.ID == rq.DistributionID || (rq.DistributionID == "" && i == 0) {
			p.Selected = d.ID
			break
		}
	}
	if len(p.Recipients.Rows) > rq.Limit {
		p.Recipients.Rows, p.Recipients.More = p.Recipients.Rows[:rq.Limit], true
	}
	if rq.Before {
		slices.Reverse(p.Recipients.Rows)
	}
	return p, nil
}

// Stats are a distribution's nine figures.
type Stats struct {
	Sent, Opened, Started, Finished, Bounced, Failed, Skipped, Blocked, Complaints int
}

// StatsSnapshot is the figures at one moment.
type StatsSnapshot struct {
	At time.Time
	Stats
}

// DistributionData is the Distribution data page.
type DistributionData struct {
	Summary              UserSummary // the page frame's, even when the distribution is not found
	Integration          AdminIntegration
	SurveyID             string
	SurveyName           string
	ID                   string
	ParentDistributionID string
	RequestType          string
	RequestStatus        string
	Subject              string
	FromName             string
	FromEmail            string
	SendDate             *time.Time
	CreatedDate          *time.Time
	LinkExpiration       *time.Time
	Stats                Stats
	History              []StatsSnapshot // oldest first
}

// chartPoints bounds the snapshots the chart gets.
const chartPoints = 500

// distributionHistorySQL is the chart: the distribution's snapshots over its
// whole life, thinned to at most $3 evenly spread ones when there are more,
// always keeping the first and the latest (the figures shown beside it).
const distributionHistorySQL = `WITH h AS (
	SELECT at, sent, opened, started, finished, bounced, failed, skipped, blocked, complaints,
		row_number() OVER (ORDER BY at) - 1 AS i, count(*) OVER () AS n
	FROM distribution_stats
	WHERE integration_id = $1 AND distribution_id = $2
	  AND EXISTS (SELECT 1 FROM brand_admins b WHERE b.integration_id = $1 AND b.email = $4)
)
SELECT at, sent, opened, started, finished, bounced, failed, skipped, blocked, complaints
FROM h
WHERE n <= $3 OR i = n - 1 OR i % ceil(n::numeric / ($3 - 1))::bigint = 0
ORDER BY at`

// DistributionData returns a distribution of an integration email
// administers with its stats history and the page frame's summary, or
// ErrNotFound (with the summary still filled in). The three statements go in
// one batch: one round trip, not three.
func (s *Store) DistributionData(ctx context.Context, email, integrationID, distributionID string, now time.Time) (DistributionData, error) {
	var d DistributionData
	var every float64
	var links []byte
	dest := append(scanAdminIntegration(&d.Integration, &every, &links),
		&d.SurveyID, &d.SurveyName, &d.ID, &d.ParentDistributionID, &d.RequestType, &d.RequestStatus, &d.Subject,
		&d.FromName, &d.FromEmail, &d.SendDate, &d.CreatedDate, &d.LinkExpiration,
		&d.Stats.Sent, &d.Stats.Opened, &d.Stats.Started, &d.Stats.Finished, &d.Stats.Bounced,
		&d.Stats.Failed, &d.Stats.Skipped, &d.Stats.Blocked, &d.Stats.Complaints)
	b := &pgx.Batch{}
	b.Queue(userSummarySQL, email, now).QueryRow(func(row pgx.Row) error {
		return row.Scan(&d.Summary.Unread, &d.Summary.IsAdmin)
	})
	b.Queue(distributionDataSQL, integrationID, email, distributionID).QueryRow(func(row pgx.Row) error {
		return row.Scan(dest...)
	})
	// Empty unless the caller is Brand Admin of the integration.
	b.Queue(distributionHistorySQL, integrationID, distributionID, chartPoints, email).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var h StatsSnapshot
			if err := rows.Scan(&h.At, &h.Sent, &h.Opened, &h.Started, &h.Finished, &h.Bounced,
				&h.Failed, &h.Skipped, &h.Blocked, &h.Complaints); err != nil {
				return err
			}
			d.History = append(d.History, h)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return d, mapErr("distribution data", err)
	}
	d.Integration.finish(every, links)
	return d, nil
}

const distributionDataSQL = `SELECT ` + integrationCols + `,
       d.survey_id, coalesce(s.name, ''), d.qualtrics_id, d.parent_distribution_id, d.request_type, d.request_status, d.subject,
       d.from_name, d.from_email, d.send_date, d.created_date, d.link_expiration,
       d.sent, d.opened, d.started, d.finished, d.bounced, d.failed, d.skipped, d.blocked, d.complaints
FROM brand_admins b
JOIN integrations i ON i.id = b.integration_id
JOIN distributions d ON d.integration_id = b.integration_id
LEFT JOIN surveys s ON s.integration_id = d.integration_id AND s.qualtrics_id = d.survey_id
WHERE b.integration_id = $1 AND b.email = $2 AND d.qualtrics_id = $3 AND d.deleted_at IS NULL`
