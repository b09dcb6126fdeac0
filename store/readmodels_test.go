package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

const (
	tenant1 = "00000000-0000-4000-8000-000000000001"
	tenant2 = "00000000-0000-4000-8000-000000000002"
)

func mustExec(t *testing.T, s *store.Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

func TestReadModels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	in := func(d time.Duration) time.Time { return now.Add(d) }
	mustExec(t, s, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id) VALUES
	  ($1, 'One', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k'), ($2, 'Two', 'https://fra1.qualtrics.com/API/v3/', '\x00', 'k')`, tenant1, tenant2)
	mustExec(t, s, `INSERT INTO brand_admins (integration_id, email) VALUES ($1, 'boss@example.com')`, tenant1)
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date) VALUES
	  ($1, 'SV_A', 'A', true, NULL), ($1, 'SV_B', 'B', true, $3), ($1, 'SV_C', 'C', true, NULL),
	  ($1, 'SV_D', 'D', true, NULL), ($2, 'SV_A', 'A in two', true, NULL)`, tenant1, tenant2, in(10*time.Hour))
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, link_expiration, deleted_at, send_date) VALUES
	  ($1, 'D_A1', 'SV_A', '', 'Invite', $3, NULL, $5),
	  ($1, 'D_A2', 'SV_A', 'D_A1', 'Reminder', $4, NULL, $6),
	  ($1, 'D_AT', 'SV_A', '', 'TestEmail', NULL, NULL, $6),
	  ($1, 'D_B1', 'SV_B', '', 'Invite', NULL, NULL, $5),
	  ($1, 'D_C1', 'SV_C', '', 'Invite', $4, NULL, $5),
	  ($1, 'D_C2', 'SV_C', 'D_C1', 'Reminder', $4, NULL, $6),
	  ($1, 'D_D1', 'SV_D', '', 'Invite', $4, $5, $5),
	  ($2, 'D_A1', 'SV_A', '', 'Invite', NULL, NULL, $5)`,
		tenant1, tenant2, in(2*time.Hour), in(48*time.Hour), in(-72*time.Hour), in(-24*time.Hour))
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, link_expiration) VALUES
	  ($1, 'D_A1', 'C1', 'SV_A', 'u@example.com', 'Opened', NULL),
	  ($1, 'D_A2', 'C1', 'SV_A', 'u@example.com', 'Success', NULL),
	  ($1, 'D_AT', 'C1', 'SV_A', 'u@example.com', 'Success', NULL),
	  ($1, 'D_B1', 'C1', 'SV_B', 'u@example.com', 'Success', $3),
	  ($1, 'D_C1', 'C1', 'SV_C', 'u@example.com', 'SurveyScreenedOut', NULL),
	  ($1, 'D_C2', 'C1', 'SV_C', 'u@example.com', 'Success', NULL),
	  ($1, 'D_D1', 'C1', 'SV_D', 'u@example.com', 'Success', NULL),
	  ($2, 'D_A1', 'C9', 'SV_A', 'u@example.com', 'Success', NULL),
	  ($2, 'D_A1', 'C8', 'SV_A', 'other@example.com', 'Success', NULL)`, tenant1, tenant2, in(-time.Minute))

	t.Run("My active surveys keeps one row per survey, the invitation that expires last, and applies every rule", func(t *testing.T) {
		got, err := s.MyActiveSurveys(ctx, "u@example.com", now)
		if err != nil {
			t.Fatal(err)
		}
		type row struct{ integ, survey, dist string }
		var rows []row
		for _, m := range got {
			rows = append(rows, row{m.Integration.ID, m.SurveyID, m.DistributionID})
		}
		// SV_B: the recipient's own expiry passed although the survey's has not.
		// SV_C: screened out through the invitation, so the reminder does not count.
		// SV_D: its only distribution is deleted. D_AT is a test email.
		want := []row{{tenant1, "SV_A", "D_A2"}, {tenant2, "SV_A", "D_A1"}}
		if len(rows) != len(want) || rows[0] != want[0] || rows[1] != want[1] {
			t.Fatalf("rows %v, want %v", rows, want)
		}
		if got[0].ExpiresAt == nil || !got[0].ExpiresAt.Equal(in(48*time.Hour)) || got[1].ExpiresAt != nil {
			t.Errorf("expiries %v %v", got[0].ExpiresAt, got[1].ExpiresAt)
		}
	})

	t.Run("survey details are only found by their recipient", func(t *testing.T) {
		if _, err := s.MySurveyDetail(ctx, "other@example.com", tenant1, "D_A1", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other user: %v", err)
		}
		d, err := s.MySurveyDetail(ctx, "u@example.com", tenant1, "D_C2", now)
		if err != nil || !d.FinishedElsewhere {
			t.Errorf("screened-out elsewhere: %+v %v", d.FinishedElsewhere, err)
		}
	})

	t.Run("admin views need the caller to be Brand Admin of the integration", func(t *testing.T) {
		results := func(email, integ, dist string) (store.SurveyResultsPage, error) {
			return s.SurveyResults(ctx, store.SurveyResultsQuery{Email: email, IntegrationID: integ, SurveyID: "SV_A",
				Recipients: store.RecipientsQuery{DistributionID: dist}}, now)
		}
		p, err := results("u@example.com", tenant1, "D_A1")
		if !errors.Is(err, store.ErrNotFound) || len(p.Distributions) != 0 || len(p.Recipients.Rows) != 0 || p.Selected != "" {
			t.Errorf("non-admin results: %+v %v", p, err)
		}
		if p.Summary.IsAdmin {
			t.Errorf("non-admin summary: %+v", p.Summary)
		}
		if _, err := results("boss@example.com", tenant2, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant results: %v", err)
		}
		r, err := results("boss@example.com", tenant1, "")
		if err != nil || len(r.Distributions) != 2 || r.Distributions[0].ID != "D_A2" || r.Selected != "D_A2" || !r.Summary.IsAdmin {
			t.Fatalf("results %+v %q %+v %v", r.Distributions, r.Selected, r.Summary, err)
		}
		if r, err := results("boss@example.com", tenant1, "D_B1"); err != nil || r.Selected != "" || len(r.Recipients.Rows) != 0 {
			t.Errorf("another survey's distribution: %q %+v %v", r.Selected, r.Recipients, err)
		}
		if _, err := s.DistributionData(ctx, "boss@example.com", tenant2, "D_A1", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant distribution: %v", err)
		}
		open, err := s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "boss@example.com", Limit: 2}, now)
		if err != nil || open.Total != 4 || len(open.Rows) != 2 || open.Rows[0].SurveyID != "SV_B" || open.Rows[1].SurveyID != "SV_A" {
			t.Errorf("open surveys %+v %v", open, err)
		}
		if len(open.Integrations) != 1 || open.Integrations[0].ID != tenant1 || open.Integrations[0].Name != "One" ||
			open.Rows[0].Integration.ID != tenant1 || !open.Summary.IsAdmin {
			t.Errorf("open surveys' integrations %+v, summary %+v", open.Integrations, open.Summary)
		}
		open, err = s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "boss@example.com", Limit: 2, Offset: 10}, now)
		if err != nil || open.Total != 4 || len(open.Rows) != 0 {
			t.Errorf("past the last page: %+v %v", open, err)
		}
		open, err = s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "u@example.com", Limit: 2}, now)
		if err != nil || open.Total != 0 || len(open.Rows) != 0 || len(open.Integrations) != 0 || open.Summary.IsAdmin {
			t.Errorf("a user who administers nothing: %+v %v", open, err)
		}
	})

	t.Run("the feed shows unexpired items and only their owner can mark them read", func(t *testing.T) {
		mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, data, created_at, expires_at) VALUES
		  ($1, 'new_survey', 'k1', 'u@example.com', '{}', $2, $3),
		  ($1, 'new_survey', 'k2', 'u@example.com', '{}', $4, $2)`, tenant1, in(-time.Hour), in(47*time.Hour), in(-49*time.Hour))
		feed, err := s.Feed(ctx, "u@example.com", now, 10)
		if err != nil || len(feed.Items) != 1 || feed.Links[tenant1].BaseURL != "https://iad1.qualtrics.com/API/v3/" || len(feed.Links) != 1 {
			t.Fatalf("feed %+v %v", feed, err)
		}
		if n, _ := s.MarkRead(ctx, "other@example.com", feed.Items[0].ID, now); n != 0 {
			t.Errorf("another user marked %d read", n)
		}
		sum, _ := s.UserSummary(ctx, "u@example.com", now)
		if sum.Unread != 1 || sum.IsAdmin {
			t.Errorf("summary %+v", sum)
		}
		if n, _ := s.MarkRead(ctx, "u@example.com", 0, now); n != 1 {
			t.Errorf("mark all: %d", n)
		}
		if sum, _ := s.UserSummary(ctx, "boss@example.com", now); !sum.IsAdmin {
			t.Errorf("boss summary %+v", sum)
		}
	})
}

// Survey results pages a distribution's recipients by keyset: forward to the
// end and back again, every row once, in email order, with a status filter
// applied inside the page (never a short page while rows remain).
func TestSurveyResultsPagesRecipientsByKeyset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	mustExec(t, s, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id) VALUES
	  ($1, 'One', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k')`, tenant1)
	mustExec(t, s, `INSERT INTO brand_admins (integration_id, email) VALUES ($1, 'boss@example.com')`, tenant1)
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, 'SV_A', 'A', true)`, tenant1)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, send_date) VALUES
	  ($1, 'D_1', 'SV_A', 'Invite', $2), ($1, 'D_2', 'SV_A', 'Invite', $3)`, tenant1, now.Add(-48*time.Hour), now.Add(-time.Hour))
	// 120 recipients of D_1 (every third one finished, two contacts sharing
	// one address), and a few of D_2 that must never show.
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status)
	  SELECT $1::uuid, 'D_1', 'C' || n, 'SV_A', 'u' || lpad((n / 2)::text, 3, '0') || '@example.com',
	         CASE WHEN n % 3 = 0 THEN 'SurveyFinished' ELSE 'Success' END
	  FROM generate_series(1, 120) n
	  UNION ALL SELECT $1::uuid, 'D_2', 'X' || n, 'SV_A', 'x' || n || '@example.com', 'Success' FROM generate_series(1, 5) n`, tenant1)

	page := func(rq store.RecipientsQuery) store.SurveyResultsPage {
		t.Helper()
		rq.Limit = 50
		p, err := s.SurveyResults(ctx, store.SurveyResultsQuery{Email: "boss@example.com", IntegrationID: tenant1, SurveyID: "SV_A", Recipients: rq}, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func(r store.RecipientRow) string { return r.Email + "/" + r.ContactID }
	for _, tc := range []struct {
		name     string
		statuses []string
		want     int
	}{{"all", nil, 120}, {"finished", []string{"SurveyFinished"}, 40}} {
		t.Run(tc.name, func(t *testing.T) {
			var forward []string
			rq := store.RecipientsQuery{DistributionID: "D_1", Statuses: tc.statuses}
			var pages []store.SurveyResultsPage
			for {
				p := page(rq)
				if p.Selected != "D_1" || len(p.Distributions) != 2 || p.Distributions[0].ID != "D_2" {
					t.Fatalf("selected %q of %+v", p.Selected, p.Distributions)
				}
				pages = append(pages, p)
				for _, r := range p.Recipients.Rows {
					if tc.statuses != nil && r.Status != tc.statuses[0] {
						t.Fatalf("status %q passed the filter", r.Status)
					}
					forward = append(forward, key(r))
				}
				if !p.Recipients.More {
					break
				}
				if len(p.Recipients.Rows) != 50 {
					t.Fatalf("a short page (%d rows) before the end", len(p.Recipients.Rows))
				}
				last := p.Recipients.Rows[len(p.Recipients.Rows)-1]
				rq.AfterEmail, rq.AfterContactID, rq.Before = last.Email, last.ContactID, false
			}
			if len(forward) != tc.want || !slices.IsSorted(forward) || len(slices.Compact(slices.Clone(forward))) != tc.want {
				t.Fatalf("forward: %d rows, sorted %v: %v", len(forward), slices.IsSorted(forward), forward)
			}
			if want := (tc.want + 49) / 50; len(pages) != want {
				t.Fatalf("%d pages, want %d", len(pages), want)
			}
			// Back from the last page: each earlier page comes back whole and in order.
			for i := len(pages) - 1; i > 0; i-- {
				first := pages[i].Recipients.Rows[0]
				back := page(store.RecipientsQuery{DistributionID: "D_1", Statuses: tc.statuses, AfterEmail: first.Email, AfterContactID: first.ContactID, Before: true})
				if !back.Recipients.More != (i == 1) {
					t.Errorf("page %d: More %v going back", i-1, back.Recipients.More)
				}
				got := make([]string, 0, 50)
				for _, r := range back.Recipients.Rows {
					got = append(got, key(r))
				}
				want := make([]string, 0, 50)
				for _, r := range pages[i-1].Recipients.Rows {
					want = append(want, key(r))
				}
				if !slices.Equal(got, want) {
					t.Errorf("page %d going back:\n got %v\nwant %v", i-1, got, want)
				}
			}
		})
	}
	// The newest distribution is selected when none is asked for.
	if p := page(store.RecipientsQuery{}); p.Selected != "D_2" || len(p.Recipients.Rows) != 5 || p.Recipients.More {
		t.Errorf("default selection %q with %d rows", p.Selected, len(p.Recipients.Rows))
	}
}
