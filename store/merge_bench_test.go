package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// BenchmarkStagedMerge measures the merge of one large staged distribution,
// the one statement of a sync that grows with a single distribution: the
// first merge (every recipient new) and a second one of the same pages
// (nothing changed), each in its transaction, as the syncer runs them on a
// clock of their own (syncer's mergeTimeout, 10 minutes). It reports
// seconds and rows a second for each.
//
//	MICROAPPS_BENCH_ROWS=1000000 go test ./store/ -run '^$' -bench StagedMerge -benchtime 1x -count 3
//
// MICROAPPS_BENCH_EXPLAIN=1 prints the plan of a third merge.
func BenchmarkStagedMerge(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("MICROAPPS_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		stagedMergeOnce(b, n)
	}
}

func stagedMergeOnce(b *testing.B, n int) {
	b.StopTimer()
	ctx := context.Background()
	s := storetest.New(b)
	id := newIntegration(b, s)
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := s.UpsertDistributions(ctx, id, []store.DistributionInput{{ID: "EMD_BIG", SurveyID: "SV_1", RequestType: "Invite",
		SendDate: now.Add(-time.Hour), Stats: store.DistributionStats{Sent: n}}}, now); err != nil {
		b.Fatal(err)
	}
	var runID int64
	if err := s.Pool().QueryRow(ctx, `INSERT INTO sync_runs (integration_id, kind, status, started_at)
		VALUES ($1, 'full', 'running', $2) RETURNING id`, id, now).Scan(&runID); err != nil {
		b.Fatal(err)
	}
	const page = 10_000
	for start := 0; start < n; start += page {
		h := make([]store.HistoryInput, 0, page)
		l := make([]store.LinkInput, 0, page)
		for i := start; i < min(n, start+page); i++ {
			c := fmt.Sprintf("CID_%08d", i)
			h = append(h, store.HistoryInput{ContactID: c, ContactLookupID: "MLRP_" + c, Status: "Success", SentAt: now.Add(-time.Hour)})
			l = append(l, store.LinkInput{ContactID: c, Email: fmt.Sprintf("p%d@example.com", i), Link: "https://x.qualtrics.com/jfe/form/SV_1?Q_DL=" + c,
				LinkExpiration: now.Add(time.Duration(24*30+i%1000) * time.Hour)})
		}
		if err := s.WithTx(ctx, func(tx pgx.Tx) error {
			if err := store.StageHistoryTx(ctx, tx, runID, "EMD_BIG", 2*start, h); err != nil {
				return err
			}
			return store.StageLinksTx(ctx, tx, runID, "EMD_BIG", 2*start+len(h), l)
		}); err != nil {
			b.Fatal(err)
		}
	}
	// Staged rows are numbered 0 … 2n-1 in pages of history then links.
	merge := func() (time.Duration, store.RecipientMerge) {
		start := time.Now()
		m := mergeStaged(b, s, id, runID, 2*n, now)
		return time.Since(start), m
	}
	if os.Getenv("MICROAPPS_BENCH_EXPLAIN") != "" {
		defer func() {
			restore := store.SetMergePlan(func(plan []byte) { fmt.Println(planText(plan)) })
			defer restore()
			mergeStaged(b, s, id, runID, 2*n, now)
		}()
	}
	b.StartTimer()
	first, m1 := merge()
	again, m2 := merge()
	b.StopTimer()
	b.ReportMetric(first.Seconds(), "first-s")
	b.ReportMetric(float64(n)/first.Seconds(), "first-rows/s")
	b.ReportMetric(again.Seconds(), "unchanged-s")
	b.ReportMetric(float64(n)/again.Seconds(), "unchanged-rows/s")
	b.Logf("%d recipients: first merge %v (%d stored, %d changed), unchanged merge %v (%d changed)",
		n, first.Round(time.Millisecond), m1.Recipients, m1.Changed, again.Round(time.Millisecond), m2.Changed)
}
