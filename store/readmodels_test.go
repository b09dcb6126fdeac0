package store_test

import (
	"context"
	"errors"
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
		if _, err := s.MySurveyDetail(ctx, "other@example.com", tenant1, "D_A1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other user: %v", err)
		}
		d, err := s.MySurveyDetail(ctx, "u@example.com", tenant1, "D_C2")
		if err != nil || !d.FinishedElsewhere {
			t.Errorf("screened-out elsewhere: %+v %v", d.FinishedElsewhere, err)
		}
	})

	t.Run("admin views need the caller to be Brand Admin of the integration", func(t *testing.T) {
		if _, err := s.SurveyResults(ctx, "u@example.com", tenant1, "SV_A"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("non-admin results: %v", err)
		}
		if _, err := s.SurveyResults(ctx, "boss@example.com", tenant2, "SV_A"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant results: %v", err)
		}
		r, err := s.SurveyResults(ctx, "boss@example.com", tenant1, "SV_A")
		if err != nil || len(r.Distributions) != 2 || r.Distributions[0].ID != "D_A2" {
			t.Fatalf("results %+v %v", r.Distributions, err)
		}
		recips, err := s.DistributionRecipients(ctx, store.RecipientsQuery{Email: "u@example.com", IntegrationID: tenant1, DistributionID: "D_A1"})
		if err != nil || recips.More || len(recips.Rows) != 0 {
			t.Errorf("non-admin recipients: %+v %v", recips, err)
		}
		if _, err := s.DistributionData(ctx, "boss@example.com", tenant2, "D_A1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant distribution: %v", err)
		}
		open, total, err := s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "boss@example.com", Limit: 2}, now)
		if err != nil || total != 4 || len(open) != 2 || open[0].SurveyID != "SV_B" {
			t.Errorf("open surveys %d %+v %v", total, open, err)
		}
		_, total, err = s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "boss@example.com", Limit: 2, Offset: 10}, now)
		if err != nil || total != 4 {
			t.Errorf("past the last page: total %d %v", total, err)
		}
	})

	t.Run("the feed shows unexpired items and only their owner can mark them read", func(t *testing.T) {
		mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, data, created_at, expires_at) VALUES
		  ($1, 'new_survey', 'k1', 'u@example.com', '{}', $2, $3),
		  ($1, 'new_survey', 'k2', 'u@example.com', '{}', $4, $2)`, tenant1, in(-time.Hour), in(47*time.Hour), in(-49*time.Hour))
		feed, err := s.Feed(ctx, "u@example.com", now, 10)
		if err != nil || len(feed) != 1 {
			t.Fatalf("feed %+v %v", feed, err)
		}
		if n, _ := s.MarkRead(ctx, "other@example.com", feed[0].ID, now); n != 0 {
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
