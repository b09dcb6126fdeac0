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

// A run failed as an orphan (its job ended without finishing it) stays
// failed when the job that was working it turns up later and reports success.
func TestFinishedRunIsNotFinishedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	var run store.SyncRun
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		run, _, err = s.QueueSyncRunTx(ctx, tx, id, "full", "admin")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	if run, err = s.StartSyncRun(ctx, id, run.ID, start); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FailOrphanSyncRuns(ctx, start.Add(time.Minute), 0); err != nil || n != 1 {
		t.Fatalf("fail orphans: %d %v", n, err)
	}
	late := run
	late.Status = "succeeded"
	finished := start.Add(2 * time.Minute)
	late.FinishedAt = &finished
	late.Surveys = 7
	err = s.FinishSyncRun(ctx, late)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finishing a failed run: err = %v, want ErrNotFound", err)
	}
	got, err := s.GetSyncRun(ctx, id, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "failed" || got.Surveys != 0 || got.Error == "" {
		t.Fatalf("run after a late finish: status %s, surveys %d, error %q; want it failed as an orphan", got.Status, got.Surveys, got.Error)
	}

	// A run that is still running is finished as before.
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		run, _, err = s.QueueSyncRunTx(ctx, tx, id, "incremental", "admin")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartSyncRun(ctx, id, run.ID, start); err != nil {
		t.Fatal(err)
	}
	run.Status, run.FinishedAt = "succeeded", &finished
	if err := s.FinishSyncRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSyncRun(ctx, id, run.ID); got.Status != "succeeded" {
		t.Fatalf("running run finished as %s", got.Status)
	}
}

// A datacenter notice moves the base URL only while it is still the one the
// sync started with: a base URL an admin set during the run stays.
func TestSyncOutcomeKeepsABaseURLChangedDuringTheRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	in, err := s.GetIntegration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	started := in.BaseURL
	const suggested = "https://sjc1.qualtrics.com/API/v3/"
	const admins = "https://fra1.qualtrics.com/API/v3/"
	record := func() string {
		t.Helper()
		err := s.WithTx(ctx, func(tx pgx.Tx) error {
			return store.RecordSyncOutcomeTx(ctx, tx, store.SyncOutcome{IntegrationID: id, At: time.Now(), Succeeded: true,
				SecretSealed: in.SecretSealed, BaseURL: suggested, StartBaseURL: started})
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetIntegration(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.BaseURL
	}
	// The admin moves the integration while the run is under way.
	if _, err := s.UpdateIntegration(ctx, id, store.AuditEvent{Actor: "admin", Action: "integration.update"}, func(i *store.Integration) error {
		i.BaseURL = admins
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := record(); got != admins {
		t.Fatalf("base URL after the run = %s, want the admin's %s", got, admins)
	}
	// Nobody touched it: the notice is followed.
	started = admins
	if got := record(); got != suggested {
		t.Fatalf("base URL after the run = %s, want the suggested %s", got, suggested)
	}
}
