package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Issue 29.4: a late worker on a unit another worker merged can neither move
// its cursor, nor merge what is left of its staging (which would mark every
// recipient of the distribution deleted), nor finish it; a second job cannot
// hold a run another job holds.
func TestALateWorkerCannotTouchAUnitAnotherMerged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	var runID int64
	if err := s.Pool().QueryRow(ctx, `INSERT INTO sync_runs (integration_id, kind, status, started_at)
		VALUES ($1, 'full', 'running', $2) RETURNING id`, id, now).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, synced_at, created_at, updated_at)
		SELECT $1, 'EMD_1', 'CID_' || g, 'SV_1', 'p' || g || '@example.com', 'Success', $2, $2, $2 FROM generate_series(1, 5) g`, id, now)
	u := store.SyncUnit{RunID: runID, Key: store.UnitKey(store.UnitRecipients, "EMD_1"), Kind: store.UnitRecipients,
		SurveyID: "SV_1", DistributionID: "EMD_1"}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		_, err := store.AddSyncUnitsTx(ctx, tx, runID, []store.SyncUnit{u})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	u.Status = store.UnitPending
	inTx := func(fn func(tx pgx.Tx) error) error { return s.WithTx(ctx, fn) }

	// Worker A stages the whole distribution and moves the cursor.
	rows := make([]store.HistoryInput, 5)
	for i := range rows {
		rows[i] = store.HistoryInput{ContactID: "CID_" + string(rune('1'+i)), Status: "Success"}
	}
	a := u
	a.Staged, a.HistoryDone, a.LinksDone, a.NextOrd, a.Pages = true, true, true, len(rows), 1
	if err := inTx(func(tx pgx.Tx) error {
		if err := store.StageHistoryTx(ctx, tx, runID, "EMD_1", 0, rows); err != nil {
			return err
		}
		return store.SaveSyncUnitCursorTx(ctx, tx, u, a)
	}); err != nil {
		t.Fatal(err)
	}
	// Worker B read the unit before A moved it: it cannot move the cursor.
	b := u
	b.Staged, b.NextOrd, b.Pages = true, 2, 1
	if err := inTx(func(tx pgx.Tx) error { return store.SaveSyncUnitCursorTx(ctx, tx, u, b) }); !errors.Is(err, store.ErrUnitLost) {
		t.Errorf("a stale cursor moved the unit: %v", err)
	}
	// Nor merge with a cursor that does not match.
	if err := inTx(func(tx pgx.Tx) error { _, err := store.LockRecipientsUnitTx(ctx, tx, id, u); return err }); !errors.Is(err, store.ErrUnitLost) {
		t.Errorf("a stale worker locked the unit for its merge: %v", err)
	}
	// A staging that does not hold what the cursor says is refused.
	if err := inTx(func(tx pgx.Tx) error {
		bt, _ := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
		return bt.AddStaged(ctx, runID, len(rows)+1)
	}); !errors.Is(err, store.ErrUnitLost) {
		t.Errorf("a merge took a staging short of its cursor: %v", err)
	}
	// A merges and finishes.
	if err := inTx(func(tx pgx.Tx) error {
		if _, err := store.LockRecipientsUnitTx(ctx, tx, id, a); err != nil {
			return err
		}
		bt, _ := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
		if err := bt.AddStaged(ctx, runID, a.NextOrd); err != nil {
			return err
		}
		if _, err := bt.Merge(ctx, now, nil); err != nil {
			return err
		}
		return store.FinishRecipientsUnitTx(ctx, tx, id, a, false, now)
	}); err != nil {
		t.Fatal(err)
	}
	// A late worker holding A's very cursor finds the unit gone: nothing is
	// merged (its empty staging would mark all five recipients deleted).
	if err := inTx(func(tx pgx.Tx) error { _, err := store.LockRecipientsUnitTx(ctx, tx, id, a); return err }); !errors.Is(err, store.ErrUnitLost) {
		t.Errorf("a late worker locked a finished unit: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM recipients WHERE integration_id = $1 AND deleted_at IS NOT NULL`, id); n != 0 {
		t.Errorf("%d recipients marked deleted", n)
	}

	release, err := s.HoldSyncRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.HoldSyncRun(ctx, runID); !errors.Is(err, store.ErrRunBusy) {
		t.Errorf("a second job held a held run: %v", err)
	}
	release()
	again, err := s.HoldSyncRun(ctx, runID)
	if err != nil {
		t.Errorf("the run is not free once released: %v", err)
	} else {
		again()
	}
}

// Issue 29.1 and 36: which distributions a sync reads silently the first
// time, by Qualtrics' own dates against the start of the integration's
// first full sync; and one that comes back after it was removed.
func TestWhichDistributionsAreReadSilently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	mustExec(t, s, `UPDATE integrations SET first_full_sync_at = $2, first_full_sync_started_at = $3 WHERE id = $1`,
		id, start.Add(time.Hour), start)
	page := []store.DistributionInput{
		{ID: "EMD_OLD", SurveyID: "SV_1", CreatedDate: start.Add(-24 * time.Hour)},
		{ID: "EMD_OLDSEND", SurveyID: "SV_1", SendDate: start.Add(-time.Minute)},
		{ID: "EMD_NEW", SurveyID: "SV_1", CreatedDate: start.Add(2 * time.Hour)},
		{ID: "EMD_SAMESECOND", SurveyID: "SV_1", CreatedDate: start},
		{ID: "EMD_NODATE", SurveyID: "SV_1"},
	}
	if _, err := s.UpsertDistributions(ctx, id, page, start.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	silent := func(d string) bool {
		t.Helper()
		return count(t, s, `SELECT count(*) FROM distributions WHERE integration_id = $1 AND qualtrics_id = $2 AND recipients_silent`, id, d) == 1
	}
	for d, want := range map[string]bool{"EMD_OLD": true, "EMD_OLDSEND": true, "EMD_NEW": false, "EMD_SAMESECOND": false, "EMD_NODATE": false} {
		if got := silent(d); got != want {
			t.Errorf("%s silent %v, want %v", d, got, want)
		}
	}
	mustExec(t, s, `UPDATE distributions SET deleted_at = $2 WHERE integration_id = $1 AND qualtrics_id = 'EMD_NEW'`, id, start.Add(4*time.Hour))
	if _, err := s.UpsertDistributions(ctx, id, page[2:3], start.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !silent("EMD_NEW") {
		t.Error("a distribution that came back after it was removed is not read silently")
	}
}
