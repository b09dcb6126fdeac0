// Package webtest is the small, fully known world the pages' tests run
// on (three integrations, their surveys, distributions, recipients,
// statistics and notifications at a fixed clock), and the helpers that
// request and read pages. It is test support: the product never imports it.
package webtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Now is the fixed clock of the page tests.
var Now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	IntA = "00000000-0000-4000-8000-00000000000a" // Sales, fresh, admin@ is Brand Admin
	IntB = "00000000-0000-4000-8000-00000000000b" // Customer Success, last sync failed
	IntC = "00000000-0000-4000-8000-00000000000c" // nobody here administers it
)

// Fixture is a migrated database with a small, fully known world.
type Fixture struct {
	Store *store.Store
}

func Exec(t testing.TB, s *store.Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("Fixture SQL failed: %v\n%s", err, sql)
	}
}

func New(t testing.TB) *Fixture {
	t.Helper()
	s := storetest.New(t)
	now := Now
	h := func(d time.Duration) time.Time { return now.Add(d) }
	Exec(t, s, `INSERT INTO integrations (id, name, functional_group, base_url, icon, secret_sealed, secret_key_id,
	    status, last_success_at, full_sync_every, deep_links, brand_base_url) VALUES
	  ($1, 'Sales EMEA', 'Sales', 'https://iad1.qualtrics.com/API/v3/', 'chart', '\x00', 'k1', 'active', $4, '1 hour', '{}', ''),
	  ($2, 'Customer Success', 'Customer Success', 'https://fra1.qualtrics.com/API/v3/', 'heart', '\x00', 'k1', 'error', $5, '1 hour',
	      '{"results": "https://{host}/custom/{surveyId}"}', 'https://acme.eu.qualtrics.com'),
	  ($3, 'Hidden HR', 'HR', 'https://sjc1.qualtrics.com/API/v3/', 'people', '\x00', 'k1', 'active', $4, '1 hour', '{}', '')`,
		IntA, IntB, IntC, h(-10*time.Minute), time.Date(2026, 3, 10, 7, 0, 0, 0, time.UTC))
	Exec(t, s, `INSERT INTO brand_admins (integration_id, email) VALUES ($1, 'admin@example.com'), ($2, 'admin@example.com'), ($2, 'bob@example.com')`, IntA, IntB)
	Exec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date, responses_auditable, responses_generated, deleted_at) VALUES
	  ($1, 'SV_1', 'Quarterly pulse', true, $3, 12, 1, NULL),
	  ($1, 'SV_2', '<script>alert(1)</script>', true, $3, 0, 0, NULL),
	  ($1, 'SV_3', 'Inactive survey', false, $3, 0, 0, NULL),
	  ($1, 'SV_4', 'Already answered', true, $3, 3, 0, NULL),
	  ($1, 'SV_5', 'Expired link', true, $3, 0, 0, NULL),
	  ($1, 'SV_6', 'Deleted survey', true, $3, 0, 0, $4),
	  ($1, 'SV_7', 'Ended survey', true, $5, 0, 0, NULL),
	  ($2, 'SV_B1', 'Onboarding feedback', true, NULL, 4, 0, NULL),
	  ($6, 'SV_C1', 'HR secret', true, NULL, 1, 0, NULL)`,
		IntA, IntB, h(30*24*time.Hour), h(-time.Hour), h(-time.Hour), IntC)
	Exec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date,
	    created_date, link_expiration, from_name, from_email, subject, sent, opened, started, finished, bounced, failed, skipped, blocked, complaints) VALUES
	  ($1, 'EMD_1',  'SV_1', '',      'Invite',    $3, $3, $4, 'Survey Team', 'surveys@example.com', 'Tell us', 100, 60, 40, 30, 2, 1, 3, 4, 5),
	  ($1, 'EMD_1R', 'SV_1', 'EMD_1', 'Reminder',  $5, $5, $6, 'Survey Team', 'surveys@example.com', 'Reminder', 50, 20, 10, 5, 0, 0, 0, 0, 0),
	  ($1, 'EMD_T',  'SV_1', '',      'TestEmail', $5, $5, $7, '', '', 'Test', 1, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_2',  'SV_2', '',      'Invite',    $3, $3, $4, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_3',  'SV_3', '',      'Invite',    $3, $3, $4, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_4',  'SV_4', '',      'Invite',    $3, $3, $6, '', '', '', 10, 0, 0, 1, 0, 0, 0, 0, 0),
	  ($1, 'EMD_4R', 'SV_4', 'EMD_4', 'Reminder',  $5, $5, $7, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_5',  'SV_5', '',      'Invite',    $3, $3, $8, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_6',  'SV_6', '',      'Invite',    $3, $3, $4, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($1, 'EMD_7',  'SV_7', '',      'Invite',    $3, $3, NULL, '', '', '', 10, 0, 0, 0, 0, 0, 0, 0, 0),
	  ($2, 'EMD_B1', 'SV_B1', '',     'Invite',    $3, $3, NULL, '', '', '', 4, 2, 1, 1, 0, 0, 0, 0, 0),
	  ($9, 'EMD_C1', 'SV_C1', '',     'Invite',    $3, $3, NULL, '', '', '', 1, 0, 0, 0, 0, 0, 0, 0, 0)`,
		IntA, IntB, h(-48*time.Hour), h(5*time.Hour), h(-24*time.Hour), h(48*time.Hour), h(72*time.Hour), h(-time.Hour), IntC)
	Exec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at, opened_at, respond_link, link_expiration) VALUES
	  ($1, 'EMD_1',  'CID_a1', 'SV_1', 'alice@example.com', 'Opened',  $3, $3, 'https://iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1_a', NULL),
	  ($1, 'EMD_1R', 'CID_a1', 'SV_1', 'alice@example.com', 'Success', $4, NULL, 'https://iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1R_a', NULL),
	  ($1, 'EMD_T',  'CID_a1', 'SV_1', 'alice@example.com', 'Success', $4, NULL, 'https://iad1.qualtrics.com/jfe/form/SV_1?test', NULL),
	  ($1, 'EMD_1',  'CID_b1', 'SV_1', 'bob@example.com',   'SurveyFinished', $3, $3, 'https://iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1_b', NULL),
	  ($1, 'EMD_2',  'CID_a1', 'SV_2', 'alice@example.com', 'SurveyStarted', $3, $3, 'javascript:alert(1)', NULL),
	  ($1, 'EMD_3',  'CID_a1', 'SV_3', 'alice@example.com', 'Success', $3, NULL, 'https://iad1.qualtrics.com/x', NULL),
	  ($1, 'EMD_4',  'CID_a1', 'SV_4', 'alice@example.com', 'SurveyFinished', $3, $3, 'https://iad1.qualtrics.com/x', NULL),
	  ($1, 'EMD_4R', 'CID_a1', 'SV_4', 'alice@example.com', 'Success', $4, NULL, 'https://iad1.qualtrics.com/x', NULL),
	  ($1, 'EMD_5',  'CID_a1', 'SV_5', 'alice@example.com', 'Success', $3, NULL, 'https://iad1.qualtrics.com/x', NULL),
	  ($1, 'EMD_6',  'CID_a1', 'SV_6', 'alice@example.com', 'Success', $3, NULL, 'https://iad1.qualtrics.com/x', NULL),
	  ($1, 'EMD_7',  'CID_a1', 'SV_7', 'alice@example.com', 'Success', $3, NULL, 'https://iad1.qualtrics.com/x', NULL),
	  ($2, 'EMD_B1', 'CID_a2', 'SV_B1', 'alice@example.com', 'Success', $3, NULL, 'https://fra1.qualtrics.com/jfe/form/SV_B1', NULL),
	  ($5, 'EMD_C1', 'CID_c1', 'SV_C1', 'carol@example.com', 'Success', $3, NULL, 'https://sjc1.qualtrics.com/jfe/form/SV_C1', NULL)`,
		IntA, IntB, h(-48*time.Hour), h(-24*time.Hour), IntC)
	Exec(t, s, `INSERT INTO distribution_stats (integration_id, distribution_id, at, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked) VALUES
	  ($1, 'EMD_1', $2, 100, 0, 5, 0, 20, 0, 2, 0, 0),
	  ($1, 'EMD_1', $3, 100, 0, 20, 0, 45, 0, 15, 0, 0),
	  ($1, 'EMD_1', $4, 100, 1, 40, 2, 60, 3, 30, 5, 4)`,
		IntA, h(-47*time.Hour), h(-24*time.Hour), h(-time.Hour))
	Exec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, data, created_at, expires_at, read_at) VALUES
	  ($1, 'new_survey', 'n1', 'alice@example.com', 'SV_1', 'EMD_1R',
	     jsonb_build_object('surveyName', 'Quarterly pulse', 'functionalGroup', 'Sales', 'expiresAt', '2026-03-12T12:00:00Z', 'respondLink', 'https://iad1.qualtrics.com/jfe/form/SV_1'),
	     $2, $3, NULL),
	  ($1, 'survey_expiring', 'n2', 'alice@example.com', 'SV_2', 'EMD_2',
	     jsonb_build_object('surveyName', '<img src=x onerror=alert(1)>', 'functionalGroup', 'Sales', 'expiresAt', NULL, 'respondLink', 'javascript:alert(1)'),
	     $4, $3, $4),
	  ($1, 'new_survey', 'n3', 'alice@example.com', 'SV_5', 'EMD_5', '{}', $5, $6, NULL),
	  ($1, 'survey_statistics', 'n4', 'admin@example.com', 'SV_1', 'EMD_1',
	     jsonb_build_object('surveyName', 'Quarterly pulse', 'functionalGroup', 'Sales', 'sentAt', '2026-03-08T12:00:00Z', 'sent', 100, 'finished', 30,
	       'expiresAt', '2026-03-10T17:00:00Z', 'reviewLink', 'https://iad1.qualtrics.com/Q/MyProjectsSection'),
	     $2, $3, NULL)`,
		IntA, h(-2*time.Hour), h(46*time.Hour), h(-3*time.Hour), h(-72*time.Hour), h(-24*time.Hour))
	return &Fixture{Store: s}
}

var Proxy = netip.MustParsePrefix("192.0.2.0/24") // httptest.NewRequest's RemoteAddr is 192.0.2.1

// Get requests path as user (no user when "") and returns the response.
func Get(t testing.TB, h http.Handler, user, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if user != "" {
		req.Header.Set("X-Forwarded-Email", user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func Parse(t testing.TB, rec *httptest.ResponseRecorder) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func Texts(sel *goquery.Selection) []string {
	var out []string
	sel.Each(func(_ int, s *goquery.Selection) { out = append(out, strings.Join(strings.Fields(s.Text()), " ")) })
	return out
}

func Attrs(sel *goquery.Selection, name string) []string {
	var out []string
	sel.Each(func(_ int, s *goquery.Selection) { v, _ := s.Attr(name); out = append(out, v) })
	return out
}
