package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
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

// AdminIntegrations lists the integrations email is Brand Admin of, by name.
func (s *Store) AdminIntegrations(ctx context.Context, email string) ([]AdminIntegration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationCols+`
FROM brand_admins b JOIN integrations i ON i.id = b.integration_id
WHERE b.email = $1
ORDER BY i.name, i.id`, email)
	if err != nil {
		return nil, mapErr("admin integrations", err)
	}
	defer rows.Close()
	var out []AdminIntegration
	for rows.Next() {
		var a AdminIntegration
		var every float64
		var links []byte
		if err := rows.Scan(scanAdminIntegration(&a, &every, &links)...); err != nil {
			return nil, mapErr("admin integrations", err)
		}
		a.finish(every, links)
		out = append(out, a)
	}
	return out, mapErr("admin integrations", rows.Err())
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

// openSurveysSQL reads the page's surveys first (surveys_open_idx), then the
// figures of those 50 only: the figures of every open survey of a large
// integration were summed on every view before. The total is a count of the
// same index entries.
const openSurveysSQL = `
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
SELECT i.id::text, i.name, i.functional_group, i.icon,
       i.status, i.last_success_at, extract(epoch FROM i.full_sync_every)::float8,
       p.qualtrics_id, p.name, p.end_date, p.responses_auditable,
       coalesce(st.sent, 0), coalesce(st.finished, 0),
       (SELECT count(*) FROM open)
FROM page p
JOIN integrations i ON i.id = p.integration_id
LEFT JOIN LATERAL (
    SELECT sum(d.sent)::int AS sent, sum(d.finished)::int AS finished
    FROM distributions d
    WHERE d.integration_id = p.integration_id AND d.survey_id = p.qualtrics_id
      AND d.deleted_at IS NULL AND d.request_type <> 'TestEmail'
) st ON true
ORDER BY p.end_date ASC NULLS LAST, p.name, p.integration_id, p.qualtrics_id`

// OpenSurveys returns a page of the active, unexpired surveys of the
// integrations q.Email administers, the soonest end date first, and how many
// there are in all.
func (s *Store) OpenSurveys(ctx context.Context, q OpenSurveysQuery, now time.Time) ([]OpenSurvey, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Offset < 0 {
		q.Offset = 0
	}
	rows, err := s.pool.Query(ctx, openSurveysSQL, q.Email, now, escapeLike(q.Search), q.Limit, q.Offset)
	if err != nil {
		return nil, 0, mapErr("open surveys", err)
	}
	defer rows.Close()
	var out []OpenSurvey
	total := 0
	for rows.Next() {
		var o OpenSurvey
		var every float64
		if err := rows.Scan(&o.Integration.ID, &o.Integration.Name, &o.Integration.FunctionalGroup, &o.Integration.Icon,
			&o.Integration.Freshness.Status, &o.Integration.Freshness.LastSuccessAt, &every,
			&o.SurveyID, &o.Name, &o.EndDate, &o.Responses, &o.Sent, &o.Finished, &total); err != nil {
			return nil, 0, mapErr("open surveys", err)
		}
		o.Integration.Freshness.FullSyncEvery = seconds(every)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, mapErr("open surveys", err)
	}
	if len(out) == 0 && q.Offset > 0 {
		// Past the last page: still report the total so the pager can go back.
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM brand_admins b
JOIN surveys s ON s.integration_id = b.integration_id
WHERE b.email = $1 AND s.is_active AND s.deleted_at IS NULL AND (s.end_date IS NULL OR s.end_date > $2)
  AND ($3 = '' OR s.name ILIKE '%' || $3 || '%' ESCAPE '\')`, q.Email, now, escapeLike(q.Search)).Scan(&total)
		if err != nil {
			return nil, 0, mapErr("open surveys", err)
		}
	}
	return out, total, nil
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
	ID                              string
	ParentDistributionID            string
	RequestType                     string
	RequestStatus                   string
	Subject                         string
	SendDate                        *time.Time
	CreatedDate                     *time.Time
	LinkExpiration                  *time.Time
	Sent, Opened, Started, Finished int
}

// SurveyResults returns a survey of an integration email administers and its
// distributions newest first, or ErrNotFound.
func (s *Store) SurveyResults(ctx context.Context, email, integrationID, surveyID string) (SurveyResult, error) {
	var r SurveyResult
	var every float64
	var links []byte
	dest := append(scanAdminIntegration(&r.Integration, &every, &links),
		&r.SurveyID, &r.Name, &r.IsActive, &r.Deleted, &r.StartDate, &r.EndDate,
		&r.ResponsesAuditable, &r.ResponsesGenerated, &r.ResponsesDeleted)
	err := s.pool.QueryRow(ctx, `SELECT `+integrationCols+`,
       s.qualtrics_id, s.name, s.is_active, s.deleted_at IS NOT NULL, s.start_date, s.end_date,
       s.responses_auditable, s.responses_generated, s.responses_deleted
FROM brand_admins b
JOIN integrations i ON i.id = b.integration_id
JOIN surveys s ON s.integration_id = b.integration_id
WHERE b.integration_id = $1 AND b.email = $2 AND s.qualtrics_id = $3`, integrationID, email, surveyID).Scan(dest...)
	if err != nil {
		return r, mapErr("survey results", err)
	}
	r.Integration.finish(every, links)
	rows, err := s.pool.Query(ctx, `SELECT qualtrics_id, parent_distribution_id, request_type, request_status, subject,
       send_date, created_date, link_expiration, sent, opened, started, finished
FROM distributions
WHERE integration_id = $1 AND survey_id = $2 AND deleted_at IS NULL AND request_type <> 'TestEmail'
ORDER BY send_date DESC NULLS LAST, created_date DESC NULLS LAST, qualtrics_id`, integrationID, surveyID)
	if err != nil {
		return r, mapErr("survey results", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d DistributionSummary
		if err := rows.Scan(&d.ID, &d.ParentDistributionID, &d.RequestType, &d.RequestStatus, &d.Subject,
			&d.SendDate, &d.CreatedDate, &d.LinkExpiration, &d.Sent, &d.Opened, &d.Started, &d.Finished); err != nil {
			return r, mapErr("survey results", err)
		}
		r.Distributions = append(r.Distributions, d)
	}
	return r, mapErr("survey results", rows.Err())
}

// RecipientsQuery selects a page of a distribution's recipients, by email
// then contact id, after the cursor (AfterEmail, AfterContactID) when one is
// given: keyset paging on recipients_distribution_email_idx, so a page costs
// the same on the first page of a 100-recipient distribution and deep into a
// 100,000-recipient one.
type RecipientsQuery struct {
	Email          string // the Brand Admin asking
	IntegrationID  string
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

// DistributionRecipients returns a page of a distribution's recipients by
// email; empty when the caller is not Brand Admin. No total is counted: that
// would read every matching row of the distribution on every view.
func (s *Store) DistributionRecipients(ctx context.Context, q RecipientsQuery) (RecipientsPage, error) {
	var out RecipientsPage
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Statuses == nil {
		q.Statuses = []string{}
	}
	sql := distributionRecipientsSQL
	if q.Before {
		sql = distributionRecipientsBeforeSQL
	}
	rows, err := s.pool.Query(ctx, sql, q.IntegrationID, q.DistributionID, q.Email, q.Statuses,
		q.Limit+1, q.AfterEmail, q.AfterContactID)
	if err != nil {
		return out, mapErr("distribution recipients", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RecipientRow
		if err := rows.Scan(&r.ContactID, &r.Email, &r.FirstName, &r.LastName, &r.Status,
			&r.SentAt, &r.OpenedAt, &r.StartedAt, &r.CompletedAt); err != nil {
			return out, mapErr("distribution recipients", err)
		}
		out.Rows = append(out.Rows, r)
	}
	if len(out.Rows) > q.Limit {
		out.Rows, out.More = out.Rows[:q.Limit], true
	}
	if q.Before {
		slices.Reverse(out.Rows)
	}
	return out, mapErr("distribution recipients", rows.Err())
}

const distributionRecipientsSQL = `SELECT r.contact_id, r.email, r.first_name, r.last_name, r.status,
       r.sent_at, r.opened_at, r.response_started_at, r.response_completed_at
FROM recipients r
WHERE r.integration_id = $1 AND r.distribution_id = $2 AND r.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM brand_admins b WHERE b.integration_id = r.integration_id AND b.email = $3)
  AND (cardinality($4::text[]) = 0 OR r.status = ANY ($4::text[]))
  AND (r.email, r.contact_id) > ($6, $7)
ORDER BY r.email, r.contact_id
LIMIT $5`

var distributionRecipientsBeforeSQL = strings.NewReplacer(
	"(r.email, r.contact_id) > ($6, $7)", "(r.email, r.contact_id) < ($6, $7)",
	"ORDER BY r.email, r.contact_id", "ORDER BY r.email DESC, r.contact_id DESC",
).Replace(distributionRecipientsSQL)

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
)
SELECT at, sent, opened, started, finished, bounced, failed, skipped, blocked, complaints
FROM h
WHERE n <= $3 OR i = n - 1 OR i % ceil(n::numeric / ($3 - 1))::bigint = 0
ORDER BY at`

// DistributionData returns a distribution of an integration email
// administers with its stats history, or ErrNotFound.
func (s *Store) DistributionData(ctx context.Context, email, integrationID, distributionID string) (DistributionData, error) {
	var d DistributionData
	var every float64
	var links []byte
	dest := append(scanAdminIntegration(&d.Integration, &every, &links),
		&d.SurveyID, &d.SurveyName, &d.ID, &d.ParentDistributionID, &d.RequestType, &d.RequestStatus, &d.Subject,
		&d.FromName, &d.FromEmail, &d.SendDate, &d.CreatedDate, &d.LinkExpiration,
		&d.Stats.Sent, &d.Stats.Opened, &d.Stats.Started, &d.Stats.Finished, &d.Stats.Bounced,
		&d.Stats.Failed, &d.Stats.Skipped, &d.Stats.Blocked, &d.Stats.Complaints)
	err := s.pool.QueryRow(ctx, `SELECT `+integrationCols+`,
       d.survey_id, coalesce(s.name, ''), d.qualtrics_id, d.parent_distribution_id, d.request_type, d.request_status, d.subject,
       d.from_name, d.from_email, d.send_date, d.created_date, d.link_expiration,
       d.sent, d.opened, d.started, d.finished, d.bounced, d.failed, d.skipped, d.blocked, d.complaints
FROM brand_admins b
JOIN integrations i ON i.id = b.integration_id
JOIN distributions d ON d.integration_id = b.integration_id
LEFT JOIN surveys s ON s.integration_id = d.integration_id AND s.qualtrics_id = d.survey_id
WHERE b.integration_id = $1 AND b.email = $2 AND d.qualtrics_id = $3 AND d.deleted_at IS NULL`,
		integrationID, email, distributionID).Scan(dest...)
	if err != nil {
		return d, mapErr("distribution data", err)
	}
	d.Integration.finish(every, links)
	rows, err := s.pool.Query(ctx, distributionHistorySQL, integrationID, distributionID, chartPoints)
	if err != nil {
		return d, mapErr("distribution data", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h StatsSnapshot
		if err := rows.Scan(&h.At, &h.Sent, &h.Opened, &h.Started, &h.Finished, &h.Bounced,
			&h.Failed, &h.Skipped, &h.Blocked, &h.Complaints); err != nil {
			return d, mapErr("distribution data", err)
		}
		d.History = append(d.History, h)
	}
	return d, mapErr("distribution data", rows.Err())
}
