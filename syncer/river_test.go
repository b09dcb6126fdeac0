package syncer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// replica is one app instance: its own Syncer and River client on the shared database.
func newReplica(t *testing.T, e *env, start bool) *syncer.Syncer {
	t.Helper()
	workers := river.NewWorkers()
	cfg := &river.Config{Workers: workers, FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 10 * time.Millisecond}
	if start {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}, syncer.Queue: {MaxWorkers: 2}}
	}
	c, err := river.NewClient(riverpgxv5.New(e.st.Pool()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sy, err := syncer.New(syncer.Options{Store: e.st, Jobs: c, Keyring: e.keyring, AllowedHosts: []string{"127.0.0.1"}, ClientConfig: fastClient})
	if err != nil {
		t.Fatal(err)
	}
	sy.Register(workers)
	if start {
		ctx, cancel := context.WithCancel(context.Background())
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			_ = c.Stop(stopCtx)
			cancel()
		})
	}
	return sy
}

func TestTwoReplicasNeverSyncOneIntegrationAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	a, b := newReplica(t, e, true), newReplica(t, e, true)

	var wg sync.WaitGroup
	results := make([]struct {
		run     store.SyncRun
		created bool
		err     error
	}, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sy := a
			if i%2 == 1 {
				sy = b
			}
			r := &results[i]
			r.run, r.created, r.err = sy.Trigger(ctx, e.in.ID, microapps.SyncFull, "admin")
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.created {
			created++
		}
		if r.run.ID != results[0].run.ID {
			t.Errorf("triggers returned runs %d and %d", r.run.ID, results[0].run.ID)
		}
	}
	t.Run("six concurrent triggers on two replicas queue one run", func(t *testing.T) {
		if created != 1 {
			t.Errorf("%d runs created", created)
		}
	})
	t.Run("the run is worked once, by one replica, and succeeds", func(t *testing.T) {
		run := waitRun(t, e, results[0].run.ID)
		if run.Status != "succeeded" {
			t.Fatalf("run %+v", run)
		}
		runs, err := e.st.ListSyncRuns(ctx, e.in.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 {
			t.Errorf("%d runs", len(runs))
		}
		var jobs int
		if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'sync'`).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if jobs != 1 {
			t.Errorf("%d sync jobs inserted", jobs)
		}
		// One walk of the survey list: a second concurrent sync would double it.
		if n := run.APICallsByEndpoint["surveys.list"]; n != e.sim.Calls("surveys") {
			t.Errorf("run made %d survey list calls, the simulator saw %d", n, e.sim.Calls("surveys"))
		}
	})
	t.Run("the scheduler then finds nothing due", func(t *testing.T) {
		n, err := a.ScheduleDue(ctx)
		if err != nil || n != 0 {
			t.Errorf("ScheduleDue = %d, %v", n, err)
		}
	})
	t.Run("cancelling a finished job is not an error", func(t *testing.T) {
		run, err := e.st.GetSyncRun(ctx, e.in.ID, results[0].run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.CancelJobs(ctx, []int64{*run.RiverJobID, 987654321}); err != nil {
			t.Error(err)
		}
	})
}

func TestSchedulerTriggersANewIntegrationAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	sy := newReplica(t, e, false) // inserts only
	n, err := sy.ScheduleDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ScheduleDue = %d, %v; want 1 run", n, err)
	}
	runs, err := e.st.ListSyncRuns(ctx, e.in.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Kind != microapps.SyncFull || runs[0].Status != "queued" || runs[0].RiverJobID == nil {
		t.Fatalf("runs %+v", runs)
	}
	if n, _ := sy.ScheduleDue(ctx); n != 0 {
		t.Errorf("a second pass queued %d more", n)
	}
	var args []byte
	if err := e.st.Pool().QueryRow(ctx, `SELECT args FROM river_job WHERE id = $1`, *runs[0].RiverJobID).Scan(&args); err != nil {
		t.Fatal(err)
	}
	if string(args) == "" {
		t.Fatal("no job args")
	}
	t.Run("a paused integration is not scheduled", func(t *testing.T) {
		e2 := newEnv(t, envOptions{store: e.st})
		if _, err := e.st.UpdateIntegration(ctx, e2.in.ID, store.AuditEvent{}, func(in *store.Integration) error {
			in.Status = "paused"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := sy.ScheduleDue(ctx); err != nil || n != 0 {
			t.Errorf("ScheduleDue = %d, %v", n, err)
		}
	})
}

func waitRun(t *testing.T, e *env, id int64) store.SyncRun {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run, err := e.st.GetSyncRun(context.Background(), e.in.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status == "succeeded" || run.Status == "failed" {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d still %s", id, run.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
