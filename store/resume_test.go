package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Issue 29.2: the pages of a failed read outlive their run's clean-up while
// they are the distribution's resume, are handed to the next run's unit of
// it, and the purge drops them once stale, unless a unit works them.
func TestAFailedReadsPagesAreKeptForTheNextRunThenPurged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	newRun := func() int64 {
		var runID int64
		if err := s.Pool().QueryRow(ctx, `INSERT INTO sync_runs (integration_id, kind, status, started_at)
			VALUES ($1, 'full', 'running', $2) RETURNING id`, id, now).Scan(&runID); err != nil {
			t.Fatal(err)
		}
		return runID
	}
	inTx := func(fn func(tx pgx.Tx) error) {
		t.Helper()
		if err := s.WithTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	staged := func(runID int64, dist string) (n int) {
		t.Helper()
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_stage_history WHERE run_id = $1 AND distribution_id = $2`,
			runID, dist).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, d := range []string{"EMD_1", "EMD_2"} {
		mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, synced_at)
			VALUES ($1, $2, 'SV_1', '', 'Invite', $3)`, id, d, now)
	}
	// Run 1 stages three rows of each distribution; both reads fail, one is
	// kept (a Qualtrics failure), the other not (the run's clean-up drops it).
	run1 := newRun()
	rows := []store.HistoryInput{{ContactID: "CID_1"}, {ContactID: "CID_2"}, {ContactID: "CID_3"}}
	var kept store.SyncUnit
	inTx(func(tx pgx.Tx) error {
		for _, d := range []string{"EMD_1", "EMD_2"} {
			u := store.SyncUnit{RunID: run1, Key: store.UnitKey(store.UnitRecipients, d), Kind: store.UnitRecipients, SurveyID: "SV_1", DistributionID: d}
			if _, err := store.AddSyncUnitsTx(ctx, tx, run1, []store.SyncUnit{u}); err != nil {
				return err
			}
			if err := store.StageHistoryTx(ctx, tx, run1, d, 0, rows); err != nil {
				return err
			}
			v := u
			v.Staged, v.HistoryNext, v.NextOrd, v.Pages = true, "https://x/next?skipToken=MLRP_3", 3, 1
			if err := store.SaveSyncUnitCursorTx(ctx, tx, u, v); err != nil {
				return err
			}
			if d == "EMD_1" {
				kept = v
				if err := store.FailRecipientsUnitKeepingPagesTx(ctx, tx, id, v, "504", now); err != nil {
					return err
				}
			} else if err := store.FinishSyncUnitTx(ctx, tx, v, store.UnitFailed, "500"); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.DeleteSyncUnits(ctx, run1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `UPDATE sync_runs SET status = 'succeeded', finished_at = $2 WHERE id = $1`, run1, now)
	if n, err := s.DropFinishedSyncPlans(ctx); err != nil {
		t.Fatal(err)
	} else if n != 0 {
		t.Errorf("the clean-up of finished plans dropped %d rows, want the kept pages left", n)
	}
	if got := staged(run1, "EMD_1"); got != 3 {
		t.Fatalf("kept pages: %d rows, want 3", got)
	}
	if got := staged(run1, "EMD_2"); got != 0 {
		t.Errorf("pages not kept: %d rows left", got)
	}

	// Run 2's unit of EMD_1 takes the cursor over; an older resume is refused.
	run2 := newRun()
	var got []store.SyncUnit
	inTx(func(tx pgx.Tx) error {
		u := store.SyncUnit{RunID: run2, Key: store.UnitKey(store.UnitRecipients, "EMD_1"), Kind: store.UnitRecipients, SurveyID: "SV_1", DistributionID: "EMD_1"}
		if _, err := store.AddSyncUnitsTx(ctx, tx, run2, []store.SyncUnit{u}); err != nil {
			return err
		}
		if n, err := store.ResumeRecipientsUnitsTx(ctx, tx, id, run2, []string{"EMD_1"}, now.Add(time.Minute)); err != nil || n != 0 {
			t.Errorf("a resume older than allowed was taken over: %d, %v", n, err)
		}
		n, err := store.ResumeRecipientsUnitsTx(ctx, tx, id, run2, []string{"EMD_1", "EMD_2"}, now.Add(-time.Minute))
		if err != nil || n != 1 {
			t.Errorf("resumed %d units (%v), want 1", n, err)
		}
		return nil
	})
	got, err := s.PendingSyncUnits(ctx, run2, store.UnitRecipients, 10, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("pending units of run 2: %v, %v", got, err)
	}
	if u := got[0]; u.StageRun() != run1 || !u.Resumed() || u.NextOrd != kept.NextOrd || u.HistoryNext != kept.HistoryNext || !u.Staged {
		t.Fatalf("run 2's unit did not take the cursor over: %+v", u)
	}

	// While run 2's unit works the pages, the purge leaves them, however old.
	if n, err := s.DropStaleResumes(ctx, now.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("the purge dropped %d resumes (%v) while a unit worked them", n, err)
	}
	// Once no unit works them, a stale resume goes with its pages.
	mustExec(t, s, `UPDATE sync_units SET status = 'failed' WHERE run_id = $1`, run2)
	if n, err := s.DropStaleResumes(ctx, now.Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("the purge dropped %d fresh resumes (%v)", n, err)
	}
	if n, err := s.DropStaleResumes(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("the purge dropped %d stale resumes (%v), want 1", n, err)
	}
	if got := staged(run1, "EMD_1"); got != 0 {
		t.Errorf("a stale resume's pages are left: %d rows", got)
	}
}
