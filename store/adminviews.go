package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// IsBrandAdmin reports whether email is Brand Admin of the integration.
func (s *Store) IsBrandAdmin(ctx context.Context, integrationID, email string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM brand_admins WHERE integration_id = $1 AND email = $2)`,
		integrationID, email).Scan(&ok)
	return ok, mapErr("is brand admin", err)
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

// OpenSurveysPage is what the Open surveys page shows.
type OpenSurveysPage struct {
	Summary      UserSummary      // the page frame's
	Integrations []IntegrationRef // the integrations the user administers, by name
	Rows         []OpenSurvey
	Total        int // open surveys matching the search, on every page
}

// openSurveysSQL is the Open surveys page in one statement: the page frame's
// summary, the integrations the user administers (for the empty state and
// the stale notes), the total, and the page's surveys (surveys_open_idx)
// with the figures of those 50 only: the figures of every open survey of a
// large integration were summed on every view before. The total is a count
// of the same index entries.
//
// $1 email, $2 now, $3 search (LIKE-escaped), $4 limit, $5 offset.
var openSurveysSQL = `
WITH open AS (
    SELECT s.integration_id, s.qualtrics_id, s.name, s.end_date, s.responses_auditable
    FROM brand_admins b
    JOIN surveys s ON s.integration_id = b.integration_id
    WHERE b.email = $1
      AND s.is_active AND s.deleted_at IS NULL
      AND (s.end_date IS NULL OR s.end_date > $2)
      AND ($3 = '' OR s.name ILIKE '%' || $3 || '%' ESCAPE '\')
), page AS (
    SELECT * FROM open
    ORDER BY end_date ASC NULLS LAST, name, integration_id, qualtrics_id
    LIMIT $4 OFFSET $5
)
SELECT sum.unread, sum.is_admin,
       (SELECT json_agg(json_build_object(` + integrationRefJSON + `) ORDER BY i.name, i.id)
        FROM brand_admins b JOIN integrations i ON i.id = b.integration_id
        WHERE b.email = $1),
       (SELECT count(*) FROM open),
       (SELECT json_agg(json_build_object(` + integrationRefJSON + `,
                'survey', p.qualtrics_id, 'survey_name', p.name, 'end', p.end_date, 'responses', p.responses_auditable,
                'sent', coalesce(st.sent, 0), 'finished', coalesce(st.finished, 0))
                ORDER BY p.end_date ASC NULLS LAST, p.name, p.integration_id, p.qualtrics_id)
        FROM page p
        JOIN integrations i ON i.id = p.integration_id
        LEFT JOIN LATERAL (
            SELECT sum(d.sent)::int AS sent, sum(d.finished)::int AS finished
            FROM distributions d
            WHERE d.integration_id = p.integration_id AND d.survey_id = p.qualtrics_id
              AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
        ) st ON true)
FROM (` + userSummarySQL + `) sum (unread, is_admin)`

// integrationRefJSON is an integration (alias i) as json_build_object
// arguments, read by refJSON.
const integrationRefJSON = `'id', i.id, 'name', i.name, 'group', i.functional_group, 'icon', i.icon,
    'status', i.status, 'last_success', i.last_success_at, 'every', extract(epoch FROM i.full_sync_every)::float8`

// refJSON is an IntegrationRef as integrationRefJSON writes it.
type refJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Group       string     `json:"group"`
	Icon        string     `json:"icon"`
	Status      string     `json:"status"`
	LastSuccess *time.Time `json:"last_success"`
	Every       float64    `json:"every"`
}

func (r refJSON) ref() IntegrationRef {
	return IntegrationRef{ID: r.ID, Name: r.Name, FunctionalGroup: r.Group, Icon: r.Icon,
		Freshness: Freshness{Status: r.Status, LastSuccessAt: r.LastSuccess, FullSyncEvery: seconds(r.Every)}}
}

// OpenSurveys returns a page of the active, unexpired surveys of the
// integrations q.Email administers, the soonest end date first, how many
// there are in all, and the page frame's summary, in one round trip.
func (s *Store) OpenSurveys(ctx context.Context, q OpenSurveysQuery, now time.Time) (OpenSurveysPage, error) {
	var p OpenSurveysPage
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Offset < 0 {
		q.Offset = 0
	}
	var integrations, rows []byte
	err := s.pool.QueryRow(ctx, openSurveysSQL, q.Email, now, escapeLike(q.Search), q.Limit, q.Offset).
		Scan(&p.Summary.Unread, &p.Summary.IsAdmin, &integrations, &p.Total, &rows)
	if err != nil {
		return p, mapErr("open surveys", err)
	}
	var refs []refJSON
	if err := unmarshalNull(integrations, &refs); err != nil {
		return p, fmt.Errorf("store: open surveys: integrations: %w", err)
	}
	for _, r := range refs {
		p.Integrations = append(p.Integrations, r.ref())
	}
	var page []struct {
		refJSON
		Survey     string     `json:"survey"`
		SurveyName string     `json:"survey_name"`
		End        *time.Time `json:"end"`
		Responses  int        `json:"responses"`
		Sent       int        `json:"sent"`
		Finished   int        `json:"finished"`
	}
	if err := unmarshalNull(rows, &page); err != nil {
		return p, fmt.Errorf("store: open surveys: %w", err)
	}
	for _, o := range page {
		p.Rows = append(p.Rows, OpenSurvey{Integration: o.ref(), SurveyID: o.Survey, Name: o.SurveyName, EndDate: o.End,
			Responses: o.Responses, Sent: o.Sent, Finished: o.Finished})
	}
	return p, nil
}

// unmarshalNull decodes a json column that is NULL when its aggregate had
// no rows.
func unmarshalNull(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
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
	ID                   string     `json:"id"`
	ParentDistributionID string     `json:"parent"`
	RequestType          string     `json:"type"`
	RequestStatus        string     `json:"status"`
	Subject              string     `json:"subject"`
	SendDate             *time.Time `json:"send"`
	CreatedDate          *time.Time `json:"created"`
	LinkExpiration       *time.Time `json:"expires"`
	Sent                 int        `json:"sent"`
	Opened               int        `json:"opened"`
	Started              int        `json:"started"`
	Finished             int        `json:"finished"`
}

// SurveyResultsQuery asks for the Survey results page: a survey of an
// integration the caller administers, its distributions, and a page of one
// distribution's recipients.
type SurveyResultsQuery struct {
	Email         string // the Brand Admin asking
	IntegrationID string
	SurveyID      string
	// Recipients pages the selected distribution (DistributionID, or the
	// newest one when ""); its Email and IntegrationID are ignored.
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
	ContactID   string     `json:"c"`
	Email       string     `json:"e"`
	FirstName   string     `json:"f"`
	LastName    string     `json:"l"`
	Status      string     `json:"s"`
	SentAt      *time.Time `json:"sa"`
	OpenedAt    *time.Time `json:"oa"`
	StartedAt   *time.Time `json:"ra"`
	CompletedAt *time.Time `json:"ca"`
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

// surveyResultsSQL is the whole Survey results page in one statement: the
// page frame's summary, the survey (only for one of its integration's Brand
// Admins), its distributions newest first, which one is selected, and a page
// of that one's recipients by keyset on recipients_distribution_email_idx.
// One statement, not four: under a concurrent sync every round trip is
// another wait for a CPU, and the page's p99 was the sum of four.
//
// $1 email, $2 now (the summary's), $3 integration, $4 survey, $5 the
// distribution asked for ("" for the newest), $6 statuses (empty: all),
// $7 rows to read (a page and one), $8/$9 the keyset cursor.
var surveyResultsSQL = `
WITH sv AS (
    SELECT ` + integrationCols + `,
           s.qualtrics_id, s.name, s.is_active, s.deleted_at IS NOT NULL, s.start_date, s.end_date,
           s.responses_auditable, s.responses_generated, s.responses_deleted
    FROM brand_admins b
    JOIN integrations i ON i.id = b.integration_id
    JOIN surveys s ON s.integration_id = b.integration_id
    WHERE b.integration_id = $3 AND b.email = $1 AND s.qualtrics_id = $4
), d AS (
    SELECT d.qualtrics_id, d.parent_distribution_id, d.request_type, d.request_status, d.subject,
           d.send_date, d.created_date, d.link_expiration, d.sent, d.opened, d.started, d.finished,
           row_number() OVER (ORDER BY d.send_date DESC NULLS LAST, d.created_date DESC NULLS LAST, d.qualtrics_id) AS n
    FROM distributions d
    WHERE d.integration_id = $3 AND d.survey_id = $4 AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
      AND EXISTS (SELECT 1 FROM sv)
), sel AS (
    SELECT qualtrics_id FROM d WHERE CASE WHEN $5 = '' THEN n = 1 ELSE qualtrics_id = $5 END
), r AS (
    SELECT r.contact_id, r.email, r.first_name, r.last_name, r.status,
           r.sent_at, r.opened_at, r.response_started_at, r.response_completed_at
    FROM recipients r
    WHERE r.integration_id = $3 AND r.distribution_id = (SELECT qualtrics_id FROM sel) AND r.deleted_at IS NULL
      AND (cardinality($6::text[]) = 0 OR r.status = ANY ($6::text[]))
      AND (r.email, r.contact_id) > ($8, $9)
    ORDER BY r.email, r.contact_id
    LIMIT $7
)
SELECT sum.unread, sum.is_admin, sv.*,
       (SELECT json_agg(json_build_object('id', d.qualtrics_id, 'parent', d.parent_distribution_id,
                'type', d.request_type, 'status', d.request_status, 'subject', d.subject,
                'send', d.send_date, 'created', d.created_date, 'expires', d.link_expiration,
                'sent', d.sent, 'opened', d.opened, 'started', d.started, 'finished', d.finished) ORDER BY d.n)
        FROM d),
       (SELECT qualtrics_id FROM sel),
       (SELECT json_agg(json_build_object('c', r.contact_id, 'e', r.email, 'f', r.first_name, 'l', r.last_name,
                's', r.status, 'sa', r.sent_at, 'oa', r.opened_at, 'ra', r.response_started_at,
                'ca', r.response_completed_at) ORDER BY r.email, r.contact_id)
        FROM r)
FROM (` + userSummarySQL + `) sum (unread, is_admin)
LEFT JOIN sv ON true`

// surveyResultsBeforeSQL reads the page that ends before the cursor: the
// same index walked backwards.
var surveyResultsBeforeSQL = strings.NewReplacer(
	"(r.email, r.contact_id) > ($8, $9)", "(r.email, r.contact_id) < ($8, $9)",
	"ORDER BY r.email, r.contact_id", "ORDER BY r.email DESC, r.contact_id DESC",
).Replace(surveyResultsSQL)

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
	sql := surveyResultsSQL
	if rq.Before {
		sql = surveyResultsBeforeSQL
	}
	var (
		integrationID                                            *string
		every                                                    *float64
		links, dists, recips                                     []byte
		selected                                                 *string
		r                                                        = &p.SurveyResult
		a                                                        = &r.Integration
		name, group, icon, status, baseURL, brandURL, surveyName *string
		active, deleted                                          *bool
		auditable, generated, deletedResponses                   *int
		surveyID                                                 *string
	)
	err := s.pool.QueryRow(ctx, sql, q.Email, now, q.IntegrationID, q.SurveyID, rq.DistributionID, rq.Statuses,
		rq.Limit+1, rq.AfterEmail, rq.AfterContactID).Scan(
		&p.Summary.Unread, &p.Summary.IsAdmin,
		&integrationID, &name, &group, &icon, &status, &a.Freshness.LastSuccessAt, &every, &baseURL, &brandURL, &links,
		&surveyID, &surveyName, &active, &deleted, &r.StartDate, &r.EndDate, &auditable, &generated, &deletedResponses,
		&dists, &selected, &recips)
	if err != nil {
		return p, mapErr("survey results", err)
	}
	if integrationID == nil {
		return p, mapErr("survey results", pgx.ErrNoRows)
	}
	a.ID, a.Name, a.FunctionalGroup, a.Icon, a.Freshness.Status = *integrationID, *name, *group, *icon, *status
	a.BaseURL, a.BrandBaseURL = *baseURL, *brandURL
	a.finish(*every, links)
	r.SurveyID, r.Name, r.IsActive, r.Deleted = *surveyID, *surveyName, *active, *deleted
	r.ResponsesAuditable, r.ResponsesGenerated, r.ResponsesDeleted = *auditable, *generated, *deletedResponses
	if err := unmarshalNull(dists, &r.Distributions); err != nil {
		return p, fmt.Errorf("store: survey results: distributions: %w", err)
	}
	if selected != nil {
		p.Selected = *selected
	}
	if err := unmarshalNull(recips, &p.Recipients.Rows); err != nil {
		return p, fmt.Errorf("store: survey results: recipients: %w", err)
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
