package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// joinFilterRows is the rows a plan's joins compared and threw away, over
// every loop: what a nested loop over a table it should have hashed costs.
func joinFilterRows(t *testing.T, plan []byte) float64 {
	t.Helper()
	var doc []struct{ Plan planNode }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) == 0 {
		t.Fatalf("plan: %v", err)
	}
	var total float64
	var walk func(n planNode)
	walk = func(n planNode) {
		total += n.num("Rows Removed by Join Filter") * max(n.num("Actual Loops"), 1)
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					walk(m)
				}
			}
		}
	}
	walk(doc[0].Plan)
	return total
}

// The merge of a large staged distribution costs in proportion to it, even
// when the planner's statistics do not know the distribution yet (read for
// the first time since recipients was analysed): from an estimate of one
// stored row the planner compared every stored recipient with every staged
// row, 19 s for an unchanged distribution of 20,000 recipients and half an
// hour at 200,000 (BenchmarkStagedMerge). Not parallel: it sets the store's
// merge plan hook.
func TestAStagedMergeIsLinearWhateverTheStatistics(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	now := time.Now().UTC().Truncate(time.Second)
	const n = 3000
	if _, err := s.UpsertDistributions(ctx, id, []store.DistributionInput{{ID: "EMD_BIG", SurveyID: "SV_1", RequestType: "Invite",
		SendDate: now.Add(-time.Hour), Stats: store.DistributionStats{Sent: n}}}, now); err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `ANALYZE recipients`) // before the distribution was read: the statistics know none of it
	var runID int64
	if err := s.Pool().QueryRow(ctx, `INSERT INTO sync_runs (integration_id, kind, status, started_at)
		VALUES ($1, 'full', 'running', $2) RETURNING id`, id, now).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	h := make([]store.HistoryInput, n)
	l := make([]store.LinkInput, n)
	for i := range n {
		c := fmt.Sprintf("CID_%06d", i)
		h[i] = store.HistoryInput{ContactID: c, Status: "Success", SentAt: now.Add(-time.Hour)}
		l[i] = store.LinkInput{ContactID: c, Email: fmt.Sprintf("p%d@example.com", i), LinkExpiration: now.Add(time.Duration(i) * time.Minute)}
	}
	if err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := store.StageHistoryTx(ctx, tx, runID, "EMD_BIG", 0, h); err != nil {
			return err
		}
		return store.StageLinksTx(ctx, tx, runID, "EMD_BIG", n, l)
	}); err != nil {
		t.Fatal(err)
	}
	merge := func() store.RecipientMerge { return mergeStaged(t, s, id, runID, 2*n, now) }
	var plans [][]byte
	restore := store.SetMergePlan(func(plan []byte) { plans = append(plans, plan) })
	defer restore()
	if m := merge(); m.Changed != n {
		t.Fatalf("first merge: %+v", m)
	}
	if m := merge(); m.Changed != 0 || m.Deleted != 0 {
		t.Fatalf("merge of the same pages again: %+v", m)
	}
	for i, plan := range plans {
		if rows := joinFilterRows(t, plan); rows > 2*n {
			t.Errorf("merge %d of %d recipients: its joins compared and dropped %.0f rows (quadratic):\n%s", i+1, n, rows, planText(plan))
		}
	}
}

// mergeStaged merges the rows staged under runID for EMD_BIG of survey SV_1
// (rows of them, history and links) in a transaction of its own, as the
// syncer merges a staged distribution.
func mergeStaged(tb testing.TB, s *store.Store, id string, runID int64, rows int, now time.Time) store.RecipientMerge {
	tb.Helper()
	ctx := context.Background()
	var m store.RecipientMerge
	if err := s.WithTx(ctx, func(tx pgx.Tx) error {
		bt, err := store.BeginRecipientsTx(ctx, tx, id, "EMD_BIG", "SV_1")
		if err != nil {
			return err
		}
		if err := bt.AddStaged(ctx, runID, rows); err != nil {
			return err
		}
		m, err = bt.Merge(ctx, now, nil)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return m
}
