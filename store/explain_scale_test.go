package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// TestExplainAnalyzeScaleDatabase prints EXPLAIN (ANALYZE, BUFFERS) of the
// rules and of the user pages' statements on a database the scale benchmark
// kept (go run ./bench/scale -keep ...), to read the plans on data of that
// size and shape rather than the tests' few rows. It runs only when
// MICROAPPS_EXPLAIN_DB names that database's URL; the plans go to
// MICROAPPS_EXPLAIN_OUT (default: the test log). The rules run inside a
// transaction that is rolled back.
func TestExplainAnalyzeScaleDatabase(t *testing.T) {
	dbURL := os.Getenv("MICROAPPS_EXPLAIN_DB")
	if dbURL == "" {
		t.Skip("MICROAPPS_EXPLAIN_DB is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var now time.Time
	if err := conn.QueryRow(ctx, `SELECT max(last_sync_at) FROM integrations`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	integ := storetest.ScaleIntegrationID(1)
	var dist, contact, email, survey string
	// A user with active invitations, found as the benchmark finds its samples.
	if err := conn.QueryRow(ctx, `SELECT r.distribution_id, r.contact_id, r.email, r.survey_id FROM recipients r WHERE r.integration_id = $1
		AND r.deleted_at IS NULL AND r.status NOT IN ('SurveyFinished', 'SurveyScreenedOut') ORDER BY r.contact_id LIMIT 1`, integ).
		Scan(&dist, &contact, &email, &survey); err != nil {
		t.Fatal(err)
	}
	var dists, contacts []string
	rows, err := conn.Query(ctx, `SELECT distribution_id, contact_id FROM recipients WHERE integration_id = $1 LIMIT 1000`, integ)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d, c string
		if err := rows.Scan(&d, &c); err != nil {
			t.Fatal(err)
		}
		dists, contacts = append(dists, d), append(contacts, c)
	}
	rows.Close()
	var admin string
	if err := conn.QueryRow(ctx, `SELECT email FROM brand_admins WHERE integration_id = $1 LIMIT 1`, integ).Scan(&admin); err != nil {
		t.Fatal(err)
	}
	feedEnd := now.Add(48 * time.Hour)
	window := now.Add(24 * time.Hour)
	var out strings.Builder
	for _, q := range []struct {
		name string
		sql  string
		args []any
	}{
		{"My active surveys", store.MyActiveSurveysAndSummarySQL, []any{email, now}},
		{"page frame summary", store.UserSummarySQL, []any{email, now}},
		{"Survey details", store.MySurveyDetailSQL, []any{integ, dist, email}},
		{"survey_expiring rule, every integration", store.RaiseExpiringSQL, []any{now, feedEnd, true, true, nil, window}},
		{"survey_expiring rule, one integration", store.RaiseExpiringSQL, []any{now, feedEnd, true, true, integ, window}},
		{"survey_statistics rule, every integration", store.RaiseStatisticsSQL, []any{now, feedEnd, true, true, nil, window}},
		{"new_survey rule, 1,000 changed recipients", store.RaiseNewSurveySQL, []any{now, feedEnd, true, true, integ, dists, contacts}},
		{"Survey results, first page", store.SurveyRecipientsSQL, []any{integ, survey, admin, "", []string{}, 51, "", ""}},
	} {
		// Twice: the first run reads cold pages; the second is what a page sees.
		for run := range 2 {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+q.sql, q.args...)
			if err != nil {
				_ = tx.Rollback(ctx)
				t.Fatalf("%s: %v", q.name, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			_ = tx.Rollback(ctx)
			if err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			if run == 1 {
				fmt.Fprintf(&out, "## %s\n\n```\n%s\n```\n\n", q.name, strings.Join(lines, "\n"))
			}
		}
	}
	if path := os.Getenv("MICROAPPS_EXPLAIN_OUT"); path != "" {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Log(out.String())
}
