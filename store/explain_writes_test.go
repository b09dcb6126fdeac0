package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// writeShapeData fills s as a brand looks after its syncs: integrations,
// surveys, distributions and recipients, with notifications and deliveries,
// sync runs and rows marked deleted, analysed. ownExpiry gives every
// recipient a link expiration of its own (as Qualtrics does for most of
// them), else none has one (they inherit their distribution's).
func writeShapeData(t *testing.T, s *store.Store, now time.Time, ownExpiry, staleStats bool) {
	t.Helper()
	if staleStats {
		// The statistics are from before the brand's data (production's
		// autovacuum lags, and these machines run without it).
		mustExec(t, s, `ANALYZE`)
	}
	const integrations, surveys, perDist, users = 4, 20, 150, 3000
	mustExec(t, s, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, first_full_sync_at, first_full_sync_started_at)
		SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'I' || g, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', $1, $1
		FROM generate_series(1, $2) g`, now.Add(-24*time.Hour), integrations)
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date, synced_at, deleted_at)
		SELECT i.id, 'SV_' || n, 'Survey ' || n, true, $1::timestamptz + (n % 30 + 1) * interval '1 day', $1,
			CASE WHEN n = 1 THEN $1::timestamptz - interval '40 days' END
		FROM integrations i, generate_series(1, $2) n`, now, surveys)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date,
			link_expiration, sent, synced_at, recipients_synced_at, deleted_at)
		SELECT s.integration_id, 'EMD_' || s.qualtrics_id || '_' || k, s.qualtrics_id, '', 'Invite', $1::timestamptz - interval '3 days',
			$1::timestamptz + (hashtext(s.qualtrics_id) % 20 + 20) * interval '1 day', $2, $1, $1,
			CASE WHEN k = 3 AND s.qualtrics_id = 'SV_3' THEN $1::timestamptz - interval '40 days' END
		FROM surveys s, generate_series(0, 3) k`, now, perDist)
	// Brands keep years of past distributions: few are marked deleted.
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date, sent, synced_at)
		SELECT i.id, 'EMD_PAST_' || n, 'SV_' || (n % $3 + 1), '', 'Invite', $1::timestamptz - n * interval '1 hour', 10, $1
		FROM integrations i, generate_series(1, $2) n`, now, 5000, surveys)
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at,
			link_expiration, expires_at, synced_at)
		SELECT d.integration_id, d.qualtrics_id, 'CID_' || n, d.survey_id, 'user' || (abs(hashtext(d.qualtrics_id || n)) % $3) || '@example.com',
			(ARRAY['Success', 'Opened', 'SurveyStarted', 'SurveyFinished', 'HardBounce', 'Pending'])[1 + n % 6],
			$1::timestamptz - interval '3 days',
			CASE WHEN $4 THEN d.link_expiration + n * interval '1 minute' END, d.link_expiration + n * interval '1 minute', $1
		FROM distributions d, generate_series(1, $2) n WHERE d.qualtrics_id NOT LIKE 'EMD_PAST_%'`, now, perDist, users, ownExpiry)
	mustExec(t, s, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, created_at, expires_at)
		SELECT r.integration_id, 'new_survey', 'k:' || r.integration_id || r.distribution_id || r.contact_id, r.email, r.survey_id,
			r.distribution_id, $1::timestamptz - (abs(hashtext(r.contact_id)) % 40) * interval '1 day',
			$1::timestamptz - (abs(hashtext(r.contact_id)) % 40 - 2) * interval '1 day'
		FROM recipients r WHERE r.status = 'Success'`, now)
	mustExec(t, s, `INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key, created_at)
		SELECT id, integration_id, c, c || id, created_at FROM notifications, unnest(ARRAY['email', 'webhook']) c`)
	mustExec(t, s, `INSERT INTO sync_runs (integration_id, kind, status, queued_at, started_at, finished_at)
		SELECT i.id, 'incremental', 'succeeded', t, t, t + interval '1 minute'
		FROM integrations i, generate_series($1::timestamptz - interval '40 days', $1::timestamptz, interval '15 minutes') t`, now)
	if !staleStats {
		mustExec(t, s, `ANALYZE`)
	}
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode map[string]any

func (n planNode) num(k string) float64 { f, _ := n[k].(float64); return f }

// rowsRead walks a plan and returns, for each of tables, the rows its nodes
// read (returned plus removed by a filter, over every loop), and the tables
// it reads with a sequential scan.
func rowsRead(t *testing.T, plan []byte, tables ...string) (map[string]float64, []string) {
	t.Helper()
	var doc []struct{ Plan planNode }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) == 0 {
		t.Fatalf("plan: %v", err)
	}
	read := map[string]float64{}
	var seq []string
	var walk func(n planNode)
	walk = func(n planNode) {
		name, _ := n["Relation Name"].(string)
		for _, tb := range tables {
			if name == tb || strings.HasPrefix(name, tb+"_p") {
				loops := max(n.num("Actual Loops"), 1)
				read[tb] += (n.num("Actual Rows") + n.num("Rows Removed by Filter") + n.num("Rows Removed by Index Recheck")) * loops
				if n["Node Type"] == "Seq Scan" {
					seq = append(seq, tb)
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
	return read, seq
}

var errRollback = errors.New("rolled back")

// planText is a plan's nodes, one a line, for a failure message.
func planText(plan []byte) string {
	var doc []struct{ Plan planNode }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) == 0 {
		return string(plan)
	}
	var b strings.Builder
	var walk func(n planNode, depth int)
	walk = func(n planNode, depth int) {
		fmt.Fprintf(&b, "%s%v %v %v rows=%v loops=%v removed=%v\n", strings.Repeat("  ", depth), n["Node Type"], n["Relation Name"],
			n["Index Name"], n["Actual Rows"], n["Actual Loops"], n["Rows Removed by Filter"])
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					walk(m, depth+1)
				}
			}
		}
	}
	walk(doc[0].Plan, 0)
	return b.String()
}

// analysedFirst are the statements that run right after the sync analyses
// the tables it grew (AnalyzeIfChanged, before the run decides its
// removals): statistics from before the data do not apply to them.
var analysedFirst = map[string]bool{
	"veto: recipients a run would remove":                     true,
	"veto: live recipients, counted as far as the rule needs": true,
}

// Issue 30: every statement the sync, the merge and the purges write with
// reads recipients, notifications and deliveries through an index, and a
// write whose work is "what changed" reads rows bounded by what changed: an
// unchanged page of distributions reads no recipient. On both shapes of data
// (every recipient with its own expiry, and none), analysed. The writes run
// with EXPLAIN ANALYZE in a transaction that is rolled back.
func TestSyncWritesCostWhatChanged(t *testing.T) {
	t.Parallel()
	for _, shape := range []struct {
		name       string
		ownExpiry  bool
		staleStats bool
	}{{"every recipient with its own expiry", true, false}, {"no recipient with its own expiry", false, false},
		{"statistics from before the data", true, true}} {
		t.Run(shape.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.New(t)
			now := time.Now().UTC().Truncate(time.Second)
			writeShapeData(t, s, now, shape.ownExpiry, shape.staleStats)
			integ := "00000000-0000-4000-8000-000000000001"
			big := []string{"recipients", "notifications", "deliveries"}
			var page []store.DistributionInput
			for _, id := range []string{"EMD_SV_2_0", "EMD_SV_2_1"} {
				page = append(page, store.DistributionInput{ID: id, SurveyID: "SV_2", RequestType: "Invite",
					SendDate: now.Add(-72 * time.Hour), Stats: store.DistributionStats{Sent: 150}})
			}
			// Stored as the listing gives them, so the page below is unchanged.
			if _, err := s.UpsertDistributions(ctx, integ, page, now); err != nil {
				t.Fatal(err)
			}
			if !shape.staleStats {
				mustExec(t, s, `ANALYZE distributions`)
			}
			hist := make([]store.HistoryInput, 150)
			links := make([]store.LinkInput, 150)
			for i := range hist {
				c := fmt.Sprintf("CID_%d", i+1)
				hist[i] = store.HistoryInput{ContactID: c, Status: "Success", SentAt: now.Add(-72 * time.Hour)}
				links[i] = store.LinkInput{ContactID: c, Email: fmt.Sprintf("user%d@example.com", i), Link: "https://x/" + c}
			}
			for _, q := range []struct {
				name  string
				setup func(ctx context.Context, tx pgx.Tx) error // in the transaction, before the EXPLAIN
				sql   string
				args  []any
				bound float64  // recipient rows the statement may read
				also  []string // more tables it must not scan
				dists float64  // distribution rows it may read (checked when also names distributions)
			}{
				{"distribution upsert, an unchanged page", func(ctx context.Context, tx pgx.Tx) error {
					_, err := store.UpsertDistributionsTx(ctx, tx, integ, page, now) // fills the page's staging table
					return err
				}, store.UpsertDistributionsSQL, []any{integ, now}, 0, nil, 0},
				{"inherited expiry of two changed distributions", nil, store.InheritExpirySQL,
					[]any{integ, []string{"EMD_SV_2_0", "EMD_SV_2_1"}}, 2 * 150, nil, 0},
				{"survey details, end date moved", nil, store.SetSurveyDetailsSQL,
					[]any{integ, "SV_2", now.Add(-time.Hour), now.Add(9 * 24 * time.Hour), 1, 1, 0, now}, 4 * 150, nil, 0},
				{"recipients merge of one distribution", nil, store.MergeArraysSQL,
					store.MergeArrayArgs(integ, "EMD_SV_2_0", "SV_2", now, true, hist, links), 4 * 150, nil, 0},
				{"veto: recipients a run would remove", nil, store.RemovedRecipientsSQL,
					[]any{integ, int64(1), []string{"EMD_SV_2_0", "EMD_SV_2_1"}}, 2 * 150, nil, 0},
				{"veto: live recipients, counted as far as the rule needs", nil, store.LiveRecipientsUpToSQL,
					[]any{integ, 600}, 600, nil, 0},
				{"purge of sync runs", nil, store.PurgeSyncRunsSQL, []any{5000, now.Add(-30 * 24 * time.Hour), 20}, 0, []string{"sync_runs"}, 0},
				{"purge: distributions marked deleted", nil, store.PurgeDeletedDistributionsSQL, []any{now.Add(-30 * 24 * time.Hour)}, 0,
					[]string{"distributions"}, 2 * 100}, // two batches of at most 100
				{"purge of notifications", nil, store.PurgeNotificationsSQL, []any{5000, now.Add(-30 * 24 * time.Hour)}, 0, nil, 0},
				{"new_survey rule for a page of changes", nil, store.RaiseNewSurveySQL,
					[]any{now, now.Add(48 * time.Hour), true, true, integ, []string{"EMD_SV_2_0"}, []string{"CID_1"}}, 150, nil, 0},
				// The end of a full run: what its listings no longer held. Run
				// 1 listed two surveys: their distributions are read (4 live
				// and 250 past each, as their listings held), not the other
				// surveys' ones.
				{"removals: unseen surveys", nil, store.UnseenSurveysSQL, []any{integ, int64(1)}, 0, nil, 0},
				{"removals: unseen distributions", func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO sync_units (run_id, key, kind, survey_id, status, listed)
						SELECT 1, 's:' || s, 'survey', s, 'done', true FROM unnest(ARRAY['SV_4', 'SV_5']) s`)
					return err
				}, store.UnseenDistributionsSQL, []any{integ, int64(1), []string{}}, 0, []string{"distributions"}, 2 * (4 + 250)},
				{"full sync: a distribution whose history was unavailable", nil, store.HistoryUnavailableSampleSQL,
					[]any{integ}, 0, []string{"distributions"}, 1},
				// A failed read's kept pages.
				{"resume: units of a survey's distributions", nil, store.ResumeRecipientsUnitsSQL,
					[]any{integ, int64(1), []string{"EMD_SV_2_0", "EMD_SV_2_1"}, now.Add(-time.Hour)}, 0, []string{"distributions"}, 2},
				{"resume: stale ones dropped by the purge", func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`) // as DropStaleResumes runs it
					return err
				}, store.DropStaleResumesSQL, []any{now.Add(-6 * time.Hour)}, 0,
					[]string{"distributions"}, 0},
				{"a finished run's staged pages, kept ones left", nil, store.DeleteSyncStageHistorySQL, []any{int64(1)}, 0,
					[]string{"distributions"}, 0},
			} {
				t.Run(q.name, func(t *testing.T) {
					if analysedFirst[q.name] && shape.staleStats {
						t.Skip("runs right after the sync analyses the tables it grew")
					}
					var plan []byte
					err := s.WithTx(ctx, func(tx pgx.Tx) error {
						if q.setup != nil {
							if err := q.setup(ctx, tx); err != nil {
								return err
							}
						}
						if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+q.sql, q.args...).Scan(&plan); err != nil {
							return err
						}
						return errRollback
					})
					if !errors.Is(err, errRollback) {
						t.Fatal(err)
					}
					read, seq := rowsRead(t, plan, append(big, q.also...)...)
					if len(seq) > 0 || read["recipients"] > q.bound {
						t.Errorf("sequential scans of %v; %v recipient rows read, at most %v allowed:\n%s", seq, read["recipients"], q.bound, planText(plan))
					}
					if slices.Contains(q.also, "distributions") && read["distributions"] > q.dists {
						t.Errorf("%v distribution rows read, at most %v allowed:\n%s", read["distributions"], q.dists, planText(plan))
					}
				})
			}
		})
	}
}
