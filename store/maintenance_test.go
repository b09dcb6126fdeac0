package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func count(t *testing.T, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return n
}

// seedIntegration gives an integration past its first sync one survey, one
// distribution, recipients (one of them active for u@example.com), a Brand
// Admin and notifications with deliveries.
func seedIntegration(t *testing.T, s *store.Store, id string, now time.Time, recipients int) {
	t.Helper()
	mustExec(t, s, `UPDATE integrations SET first_full_sync_at = $2 WHERE id = $1`, id, now.Add(-time.Hour))
	mustExec(t, s, `INSERT INTO brand_admins (integration_id, email) VALUES ($1, 'boss@example.com')`, id)
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, 'SV_1', 'S', true)`, id)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, link_expiration) VALUES ($1, 'EMD_1', 'SV_1', 'Invite', $2)`,
		id, now.Add(48*time.Hour))
	mustExec(t, s, `INSERT INTO distribution_stats (integration_id, distribution_id, at, sent, failed, started, bounced, opened, skipped, finished, complaints, blocked)
		VALUES ($1, 'EMD_1', $2, 1, 0, 0, 0, 0, 0, 0, 0, 0)`, id, now)
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status)
		SELECT $1, 'EMD_1', 'CID_' || g, 'SV_1', CASE g WHEN 1 THEN 'u@example.com' ELSE 'x' || g || '@example.com' END, 'Success'
		FROM generate_series(1, $2) g`, id, recipients)
	mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, created_at, expires_at)
		SELECT $1::uuid, 'new_survey', $1::text || ':' || g, 'u@example.com', 'SV_1', $2, $2::timestamptz + interval '48 hours'
		FROM generate_series(1, 3) g`, id, now)
	mustExec(t, s, `INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key)
		SELECT id, integration_id, 'email', 'd' || id FROM notifications WHERE integration_id = $1`, id)
}

// Issue 16.3: DELETE answers at once: the integration is gone from the API,
// the pages and the feed immediately; its data stays until the background
// removal deletes it in batches, then the row.
func TestDeletingAnIntegrationHidesItAtOnceAndRemovesItsDataInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	gone, kept := newIntegration(t, s), newIntegration(t, s)
	seedIntegration(t, s, gone, now, 23)
	seedIntegration(t, s, kept, now, 2)
	mine, err := s.MyActiveSurveys(ctx, "u@example.com", now)
	if err != nil || len(mine) != 2 {
		t.Fatalf("before: %d active surveys (%v), want 2", len(mine), err)
	}

	if _, err := s.DeleteIntegration(ctx, gone, store.AuditEvent{Actor: "t", Action: "integration.delete"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetIntegration(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get after delete: %v, want not found", err)
	}
	if _, err := s.DeleteIntegration(ctx, gone, store.AuditEvent{Actor: "t", Action: "integration.delete"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
	list, err := s.ListIntegrations(ctx)
	if err != nil || len(list) != 1 || list[0].ID != kept {
		t.Errorf("list after delete: %v (%v)", list, err)
	}
	if mine, _ := s.MyActiveSurveys(ctx, "u@example.com", now); len(mine) != 1 || mine[0].Integration.ID != kept {
		t.Errorf("My active surveys after delete: %+v", mine)
	}
	if feed, _ := s.Feed(ctx, "u@example.com", now, 100); len(feed.Items) != 3 {
		t.Errorf("feed after delete: %d items, want the other integration's 3", len(feed.Items))
	}
	if sum, _ := s.UserSummary(ctx, "u@example.com", now); sum.Unread != 3 {
		t.Errorf("unread after delete: %d, want 3", sum.Unread)
	}
	if open, _ := s.OpenSurveys(ctx, store.OpenSurveysQuery{Email: "boss@example.com"}, now); len(open.Integrations) != 1 || open.Integrations[0].ID != kept {
		t.Errorf("admin integrations after delete: %+v", open.Integrations)
	}
	if n := count(t, s, `SELECT count(*) FROM recipients WHERE integration_id = $1`, gone); n != 23 {
		t.Fatalf("%d recipients right after the delete, want 23 (removed in the background)", n)
	}
	due, err := s.DueIntegrations(ctx, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range due {
		if in.ID == gone {
			t.Error("a deleted integration is due for a sync")
		}
	}
	ids, err := s.DeletedIntegrationIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != gone {
		t.Fatalf("deleted integrations %v (%v)", ids, err)
	}

	defer func(b int) { store.PurgeBatch = b }(store.PurgeBatch)
	store.PurgeBatch = 5 // several batches
	r, err := s.RemoveDeletedIntegration(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	if r.Recipients != 23 {
		t.Errorf("removed %d recipients, want 23", r.Recipients)
	}
	for _, table := range []string{"recipients", "distributions", "distribution_stats", "surveys", "notifications", "deliveries", "brand_admins"} {
		if n := count(t, s, `SELECT count(*) FROM `+table+` WHERE integration_id = $1`, gone); n != 0 {
			t.Errorf("%d rows of %s left", n, table)
		}
		if n := count(t, s, `SELECT count(*) FROM `+table+` WHERE integration_id = $1`, kept); n == 0 {
			t.Errorf("the other integration lost its %s", table)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM integrations WHERE id = $1`, gone); n != 0 {
		t.Error("the integration's row is still there")
	}
	if _, err := s.RemoveDeletedIntegration(ctx, kept); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing a live integration: %v, want not found", err)
	}
}

// Issue 16.2: purges go in batches until done and cover every table that
// only grew.
func TestPurgeRemovesWhatOutlivedItsRetentionInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	id := newIntegration(t, s)
	seedIntegration(t, s, id, now, 5)
	old := now.Add(-40 * 24 * time.Hour)
	// 12 notifications out of the feed for 40 days, with deliveries.
	mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, created_at, expires_at)
		SELECT $1, 'new_survey', 'old' || g, 'u@example.com', $2, $2 FROM generate_series(1, 12) g`, id, old)
	mustExec(t, s, `INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key)
		SELECT id, integration_id, 'email', 'old' || id FROM notifications WHERE dedupe_key LIKE 'old%'`)
	mustExec(t, s, `INSERT INTO request_logs (integration_id, at, method, path, status, duration_ms)
		SELECT $1, $2::timestamptz - g * interval '1 hour', 'GET', '/x', 200, 1 FROM generate_series(1, 30) g`, id, now)
	mustExec(t, s, `INSERT INTO sync_runs (integration_id, kind, status, queued_at, finished_at)
		SELECT $1, 'full', 'succeeded', $2, $2 FROM generate_series(1, 30) g`, id, old)
	mustExec(t, s, `INSERT INTO qualtrics_events (integration_id, topic, response_id, received_at, applied_at)
		SELECT $1, 't', 'R_' || g, $2::timestamptz, CASE WHEN g % 2 = 0 THEN $2::timestamptz END FROM generate_series(1, 8) g`, id, old)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, deleted_at) VALUES ($1, 'EMD_old', 'SV_1', $2)`, id, old)
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status)
		SELECT $1, 'EMD_old', 'CID_' || g, 'SV_1', 'z@example.com', 'Success' FROM generate_series(1, 7) g`, id)

	defer func(b int) { store.PurgeBatch = b }(store.PurgeBatch)
	store.PurgeBatch = 4
	r, err := s.Purge(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := store.PurgeResult{RequestLogs: 6, Notifications: 12, SyncRuns: 30 - store.SyncRunsKept, Events: 8, Recipients: 7, Distributions: 1}
	got := r
	got.Analyzed = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("purged %+v, want %+v", got, want)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE idempotency_key LIKE 'old%'`); n != 0 {
		t.Errorf("%d deliveries of purged notifications left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications WHERE integration_id = $1`, id); n != 3 {
		t.Errorf("%d notifications left, want the 3 in the feed", n)
	}
	if n := count(t, s, `SELECT count(*) FROM recipients WHERE integration_id = $1`, id); n != 5 {
		t.Errorf("%d recipients left, want the 5 live ones", n)
	}
	if len(r.Analyzed) == 0 {
		t.Error("a purge that emptied most of its tables analyzed none")
	}
	again, err := s.Purge(ctx, now)
	if err != nil || again.Rows() != 0 {
		t.Errorf("second purge %+v (%v), want nothing left to purge", again, err)
	}
}

// Issue 16.5: an incremental sync rewrites no unchanged survey or
// distribution; a full one marks each seen row once, and still finds the
// rows it did not see.
func TestUnchangedRowsAreNotRewrittenBySyncs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	t0 := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	surveys := []store.SurveyInput{{ID: "SV_A", Name: "A", IsActive: true}, {ID: "SV_B", Name: "B", IsActive: true}}
	dists := []store.DistributionInput{{ID: "EMD_A", SurveyID: "SV_A"}, {ID: "EMD_B", SurveyID: "SV_A"}}
	write := func(at time.Time, sv []store.SurveyInput, ds []store.DistributionInput) {
		t.Helper()
		if _, err := s.UpsertSurveys(ctx, id, sv, at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertDistributions(ctx, id, ds, at); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() string {
		t.Helper()
		var v string
		if err := s.Pool().QueryRow(ctx, `SELECT string_agg(x, ',' ORDER BY x) FROM (
			SELECT qualtrics_id || ':' || xmin::text AS x FROM surveys WHERE integration_id = $1
			UNION ALL SELECT qualtrics_id || ':' || xmin::text FROM distributions WHERE integration_id = $1) v`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	start := func(kind string, at time.Time) {
		t.Helper()
		mustExec(t, s, `UPDATE sync_runs SET status = 'succeeded' WHERE integration_id = $1`, id)
		mustExec(t, s, `INSERT INTO sync_runs (integration_id, kind, status, started_at) VALUES ($1, $2, 'running', $3)`, id, kind, at)
	}
	write(t0, surveys, dists)
	before := versions()

	start("incremental", t0.Add(15*time.Minute))
	write(t0.Add(15*time.Minute), surveys, dists)
	write(t0.Add(16*time.Minute), surveys, dists)
	if after := versions(); after != before {
		t.Fatalf("an incremental rewrote unchanged rows:\n before %s\n after  %s", before, after)
	}

	runStart := t0.Add(time.Hour)
	start("full", runStart)
	write(runStart.Add(time.Minute), surveys[:1], dists[:1])
	marked := versions()
	if marked == before {
		t.Fatal("a full sync did not mark the rows it saw")
	}
	write(runStart.Add(2*time.Minute), surveys[:1], dists[:1])
	if again := versions(); again != marked {
		t.Fatalf("a full sync marked the same rows twice:\n %s\n %s", marked, again)
	}
	var runID int64
	if err := s.Pool().QueryRow(ctx, `SELECT id FROM sync_runs WHERE integration_id = $1 AND status = 'running'`, id).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	// SV_A's listing was read whole by the run; removals are decided at its
	// end (no veto: a limit of 100%).
	mustExec(t, s, `INSERT INTO sync_units (run_id, key, kind, survey_id, status, listed) VALUES ($1, 's:SV_A', 'survey', 'SV_A', 'done', true)`, runID)
	if _, _, err := s.DecideRemovals(ctx, id, runID, true, microapps.VetoRule{MaxDeletePercent: 100}, runStart.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM surveys WHERE integration_id = $1 AND deleted_at IS NOT NULL`, id); n != 1 {
		t.Errorf("%d surveys marked deleted, want SV_B only", n)
	}
	if n := count(t, s, `SELECT count(*) FROM distributions WHERE integration_id = $1 AND deleted_at IS NOT NULL AND qualtrics_id = 'EMD_B'`, id); n != 1 {
		t.Errorf("EMD_B, unseen by the full sync, is not marked deleted")
	}
	if n := count(t, s, `SELECT count(*) FROM surveys WHERE integration_id = $1 AND deleted_at IS NULL AND qualtrics_id = 'SV_A'`, id); n != 1 {
		t.Errorf("SV_A, seen, was marked deleted")
	}
}
