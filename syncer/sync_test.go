package syncer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
)

func TestFullSyncBringsInExactlyWhatTheSimulatorHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{logging: true})

	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	e.checkMatchesSim(ctx)

	t.Run("the run counts what it read and the calls it made", func(t *testing.T) {
		if run.Surveys != len(e.sim.Surveys(e.brand.ID)) {
			t.Errorf("run.Surveys = %d, want %d", run.Surveys, len(e.sim.Surveys(e.brand.ID)))
		}
		if run.Distributions == 0 || run.Recipients == 0 {
			t.Errorf("run counted %d distributions and %d recipients", run.Distributions, run.Recipients)
		}
		if run.APICalls != e.sim.TotalCalls() {
			t.Errorf("run.APICalls = %d, the simulator answered %d", run.APICalls, e.sim.TotalCalls())
		}
		if run.APICallsByEndpoint["distributions.history"] != e.sim.Calls(qualtricssim.EndpointHistory) {
			t.Errorf("history calls %d, simulator %d", run.APICallsByEndpoint["distributions.history"], e.sim.Calls(qualtricssim.EndpointHistory))
		}
	})
	t.Run("the first sync raises no notifications", func(t *testing.T) {
		calls, _ := e.notifier.take()
		if calls != 0 || run.Notifications != 0 {
			t.Errorf("notifier called %d times, run notifications %d", calls, run.Notifications)
		}
		if kinds(run.Changes)[store.ChangeSurveyNew] == 0 {
			t.Errorf("the run records no survey_new change: %v", kinds(run.Changes))
		}
	})
	t.Run("the integration is scheduled after its first full sync", func(t *testing.T) {
		in := e.integration()
		if in.FirstFullSyncAt == nil || in.LastSuccessAt == nil || in.NextFullSyncAt == nil || in.NextIncrementalSyncAt == nil {
			t.Fatalf("bookkeeping not set: %+v", in)
		}
		if d := in.NextFullSyncAt.Sub(*in.LastSuccessAt); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("next full sync %v after the last success, want 1h", d)
		}
	})
	t.Run("the request log holds paths without query or token", func(t *testing.T) {
		logs, err := e.st.ListRequestLogs(ctx, e.in.ID, time.Now().Add(-time.Hour), 100000)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != run.APICalls {
			t.Errorf("%d request logs for %d calls", len(logs), run.APICalls)
		}
		for _, l := range logs {
			if l.SyncRunID == nil || *l.SyncRunID != run.ID || l.Status != 200 {
				t.Fatalf("log %+v", l)
			}
			for _, bad := range []string{"?", e.token, "skipToken"} {
				if strings.Contains(l.Path, bad) {
					t.Fatalf("log path %q holds %q", l.Path, bad)
				}
			}
		}
	})
	t.Run("a second full sync of an unchanged brand changes nothing", func(t *testing.T) {
		run2 := e.sync(ctx, microapps.SyncFull)
		e.mustSucceed(run2)
		if len(run2.Changes) != 0 {
			t.Errorf("changes on an unchanged brand: %v", run2.Changes)
		}
		calls, _ := e.notifier.take()
		if calls != 0 {
			t.Errorf("notifier called %d times with nothing changed", calls)
		}
		e.checkMatchesSim(ctx)
	})
}
