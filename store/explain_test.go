package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Issue 16: every rule and page statement reads recipients, notifications and
// deliveries through an index, on a table with statistics: their cost follows
// the rows in the rule's window or of the user, not the size of the table. A
// sequential scan of one of them fails the test.
func TestRulesAndPagesNeverScanBigTables(t *testing.T) {
	t.Parallel()
	rulesAndPagesNeverScan(t, false)
}

// The same with statistics from before the data (a brand's first sync on a
// new install, before autovacuum analyses: production's lags, and these
// machines run without it).
func TestRulesAndPagesNeverScanBigTablesOnStaleStatistics(t *testing.T) {
	t.Parallel()
	rulesAndPagesNeverScan(t, true)
}

func rulesAndPagesNeverScan(t *testing.T, staleStats bool) {
	ctx := context.Background()
	s := storetest.New(t)
	if staleStats {
		mustExec(t, s, `ANALYZE`)
	}
	now := time.Now().UTC().Truncate(time.Second)
	const integrations, surveys, perDist, users = 10, 20, 60, 3000
	mustExec(t, s, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, first_full_sync_at)
		SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'I' || g, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', $1
		FROM generate_series(1, $2) g`, now.Add(-24*time.Hour), integrations)
	mustExec(t, s, `INSERT INTO brand_admins (integration_id, email) SELECT id, 'admin@example.com' FROM integrations`)
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date)
		SELECT i.id, 'SV_' || n, 'Survey ' || n, true, $1::timestamptz + (n % 30 + 1) * interval '1 day'
		FROM integrations i, generate_series(1, $2) n`, now, surveys)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date, link_expiration, sent)
		SELECT s.integration_id, 'EMD_' || s.qualtrics_id || '_' || k, s.qualtrics_id, CASE k WHEN 0 THEN '' ELSE 'EMD_' || s.qualtrics_id || '_0' END,
			CASE k WHEN 0 THEN 'Invite' ELSE 'Reminder' END, $1::timestamptz - interval '3 days',
			$1::timestamptz + (hashtext(s.qualtrics_id) % 20 + 20) * interval '1 day', $2
		FROM surveys s, generate_series(0, 1) k`, now, perDist)
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at, link_expiration, expires_at)
		SELECT d.integration_id, d.qualtrics_id, 'CID_' || u, d.survey_id, 'user' || u || '@example.com',
			(ARRAY['Success', 'Opened', 'SurveyStarted', 'SurveyFinished', 'HardBounce', 'Pending'])[1 + (u + n) % 6],
			$1::timestamptz - interval '3 days', e, e
		FROM distributions d, generate_series(1, $2) n,
			LATERAL (SELECT abs(hashtext(d.qualtrics_id || n)) % $3 AS u) u,
			LATERAL (SELECT CASE WHEN n % 100 = 0 THEN $1::timestamptz + interval '12 hours' ELSE d.link_expiration END AS e) e
		ON CONFLICT DO NOTHING`, now, perDist, users)
	mustExec(t, s, `INSERT INTO distribution_stats (integration_id, distribution_id, at, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked)
		SELECT integration_id, qualtrics_id, $1::timestamptz - k * interval '1 hour', 100, 0, 0, 0, 0, 0, 0, 0, 0
		FROM distributions, generate_series(1, 10) k`, now)
	mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, created_at, expires_at)
		SELECT r.integration_id, 'new_survey', 'k:' || r.integration_id || r.distribution_id || r.contact_id, r.email, r.survey_id,
			r.distribution_id, $1::timestamptz - (abs(hashtext(r.contact_id)) % 40) * interval '1 day',
			$1::timestamptz - (abs(hashtext(r.contact_id)) % 40 - 2) * interval '1 day'
		FROM recipients r WHERE r.status = 'Success'`, now)
	mustExec(t, s, `INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key, created_at)
		SELECT id, integration_id, c, c || id, created_at FROM notifications, unnest(ARRAY['email', 'webhook']) c`)
	if !staleStats {
		mustExec(t, s, `ANALYZE`)
	}

	integ := "00000000-0000-4000-8000-000000000001"
	var dist, contact, email, survey string
	if err := s.Pool().QueryRow(ctx, `SELECT distribution_id, contact_id, email, survey_id FROM recipients WHERE integration_id = $1 LIMIT 1`, integ).
		Scan(&dist, &contact, &email, &survey); err != nil {
		t.Fatal(err)
	}
	feedEnd := now.Add(48 * time.Hour)
	window := now.Add(24 * time.Hour)
	for _, q := range []struct {
		name string
		sql  string
		args []any
	}{
		{"new_survey rule", store.RaiseNewSurveySQL, []any{now, feedEnd, true, true, integ, []string{dist}, []string{contact}}},
		{"survey_expiring rule, every integration", store.RaiseExpiringSQL, []any{now, feedEnd, true, true, nil, window}},
		{"survey_expiring rule, one integration", store.RaiseExpiringSQL, []any{now, feedEnd, true, true, integ, window}},
		{"survey_statistics rule, every integration", store.RaiseStatisticsSQL, []any{now, feedEnd, true, true, nil, window}},
		{"survey_statistics rule, one integration", store.RaiseStatisticsSQL, []any{now, feedEnd, true, true, integ, window}},
		{"My active surveys", store.MyActiveSurveysAndSummarySQL, []any{email, now}},
		{"Survey details", store.MySurveyDetailSQL, []any{integ, dist, email}},
		{"notification feed", store.FeedSQL, []any{email, now, 100}},
		{"notification feed's links", store.FeedLinksSQL, []any{email, now, 100}},
		{"page frame summary", store.UserSummarySQL, []any{email, now}},
		{"Open surveys", store.OpenSurveysSQL, []any{"admin@example.com", now, "", 50, 0}},
		{"Open surveys, total", store.OpenSurveysCountSQL, []any{"admin@example.com", now, ""}},
		{"Survey results, the survey", store.SurveyResultSQL, []any{"admin@example.com", now, integ, survey}},
		{"Survey results, distributions", store.SurveyDistributionsSQL, []any{integ, survey, "admin@example.com"}},
		{"Survey results, first page", store.SurveyRecipientsSQL, []any{integ, survey, "admin@example.com", "", []string{}, 51, "", ""}},
		{"Survey results, next page", store.SurveyRecipientsSQL, []any{integ, survey, "admin@example.com", dist, []string{"Success"}, 51, email, contact}},
		{"Survey results, previous page", store.SurveyRecipientsBeforeSQL, []any{integ, survey, "admin@example.com", dist, []string{}, 51, email, contact}},
		{"Distribution data chart", store.DistributionHistorySQL, []any{integ, dist, 500, "admin@example.com"}},
		{"purge of notifications", store.PurgeNotificationsSQL, []any{5000, now.Add(-30 * 24 * time.Hour)}},
		{"admin deliveries", `SELECT d.id FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE d.integration_id = $1 ORDER BY d.id DESC LIMIT 50`, []any{integ}},
		{"metrics: the outbox's oldest pending delivery", store.OutboxOldestSQL, []any{microapps.Channels}},
	} {
		t.Run(q.name, func(t *testing.T) {
			var plan []byte
			if err := s.Pool().QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q.sql, q.args...).Scan(&plan); err != nil {
				t.Fatal(err)
			}
			if bad := seqScans(t, plan, "recipients", "notifications", "deliveries"); len(bad) > 0 {
				var text strings.Builder
				rows, _ := s.Pool().Query(ctx, `EXPLAIN `+q.sql, q.args...)
				for rows.Next() {
					var line string
					_ = rows.Scan(&line)
					text.WriteString(line + "\n")
				}
				rows.Close()
				t.Errorf("sequential scan of %v:\n%s", bad, text.String())
			}
		})
	}
	// The purge's cascade from notifications to deliveries finds them by index.
	var indexed bool
	if err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = 'deliveries'::regclass AND a.attname = 'notification_id')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("deliveries.notification_id (ON DELETE CASCADE) has no index leading with it (%v)", err)
	}
}

// seqScans walks an EXPLAIN (FORMAT JSON) plan and returns the tables of
// tables that it reads with a sequential scan.
func seqScans(t *testing.T, plan []byte, tables ...string) []string {
	t.Helper()
	var doc []struct{ Plan map[string]any }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) == 0 {
		t.Fatalf("plan: %v", err)
	}
	var bad []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if n["Node Type"] == "Seq Scan" {
			for _, tb := range tables {
				if n["Relation Name"] == tb {
					bad = append(bad, fmt.Sprint(tb))
				}
			}
		}
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					walk(m)
				}
			}
		}
	}
	walk(doc[0].Plan)
	return bad
}
