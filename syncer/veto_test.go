package syncer_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// emptyListing answers the survey listing with no survey while on is set,
// as Qualtrics does for an account that lost access to the projects.
func emptyListing(on *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if on.Load() && r.URL.Path == "/API/v3/surveys" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"result":{"elements":[],"nextPage":null},"meta":{"httpStatus":"200 - OK","requestId":"r"}}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func liveCounts(t *testing.T, e *env) (surveys, dists, recipients int) {
	t.Helper()
	err := e.st.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM surveys WHERE integration_id = $1 AND deleted_at IS NULL),
		(SELECT count(*) FROM distributions WHERE integration_id = $1 AND deleted_at IS NULL),
		(SELECT count(*) FROM recipients WHERE integration_id = $1 AND deleted_at IS NULL)`, e.in.ID).Scan(&surveys, &dists, &recipients)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// Issue 36: a survey listing that comes back empty removes nothing and the
// run is vetoed, run after run; a full sync with overrideVeto removes; the
// listing restored brings everything back with no notice.
func TestAnEmptyListingIsVetoed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var empty atomic.Bool
	e := newEnv(t, envOptions{seed: 3, spec: qualtricssim.Spec{Surveys: 6, Recipients: 300}, wrap: emptyListing(&empty)})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	s0, d0, r0 := liveCounts(t, e)
	if s0 != 6 || r0 == 0 {
		t.Fatalf("after the first sync: %d surveys, %d distributions, %d recipients", s0, d0, r0)
	}
	empty.Store(true)
	for i := range 2 {
		run := e.sync(ctx, microapps.SyncFull)
		e.mustSucceed(run)
		if !run.Vetoed {
			t.Fatalf("run %d with an empty listing is not vetoed: %v", i, run.Warnings)
		}
		if s, d, r := liveCounts(t, e); s != s0 || d != d0 || r != r0 {
			t.Fatalf("a vetoed run removed rows: %d/%d/%d surveys/distributions/recipients left of %d/%d/%d", s, d, r, s0, d0, r0)
		}
		w := strings.Join(run.Warnings, "\n")
		if !strings.Contains(w, "vetoed") || !strings.Contains(w, "6 surveys") {
			t.Errorf("the warning does not say what would have been removed: %v", run.Warnings)
		}
	}

	t.Run("overrideVeto removes them", func(t *testing.T) {
		run := e.queue(microapps.SyncFull)
		if err := e.st.SetSyncRunOverrideVeto(ctx, e.in.ID, run.ID); err != nil {
			t.Fatal(err)
		}
		out, err := e.sy.RunNow(ctx, e.in.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.mustSucceed(out)
		if out.Vetoed {
			t.Error("an overridden run is vetoed")
		}
		if s, d, _ := liveCounts(t, e); s != 0 || d != 0 {
			t.Errorf("%d surveys and %d distributions left after the override", s, d)
		}
	})

	t.Run("the listing restored brings them back with no notice", func(t *testing.T) {
		empty.Store(false)
		_, _ = e.notifier.take()
		run := e.sync(ctx, microapps.SyncFull)
		e.mustSucceed(run)
		if s, d, r := liveCounts(t, e); s != s0 || d != d0 || r != r0 {
			t.Errorf("back: %d/%d/%d, want %d/%d/%d", s, d, r, s0, d0, r0)
		}
		_, changes := e.notifier.take()
		for _, c := range changes {
			if c.Kind == store.ChangeRecipientDelivered || c.Kind == store.ChangeSurveyNew || c.Kind == store.ChangeDistributionNew {
				t.Errorf("a row that came back was announced: %+v", c)
			}
		}
	})
}

// Issue 36: a removed survey counts its recipients: 6 surveys holding 42
// recipients are vetoed by the recipients' count, even under a survey limit
// that would let them through.
func TestTheVetoCountsWhatARemovedSurveyHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var empty atomic.Bool
	e := newEnv(t, envOptions{seed: 3, spec: qualtricssim.Spec{Surveys: 6, Recipients: 300}, wrap: emptyListing(&empty)})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	// Surveys and distributions may go (a minimum above their counts), not
	// recipients.
	if _, err := e.st.Pool().Exec(ctx, `UPDATE integrations SET veto_min_rows = 100 WHERE id = $1`, e.in.ID); err != nil {
		t.Fatal(err)
	}
	e.in = e.integration()
	_, _, r0 := liveCounts(t, e)
	if r0 <= 100 {
		t.Skipf("only %d recipients", r0)
	}
	empty.Store(true)
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	if !run.Vetoed || run.Removals.Recipients != int64(r0) || run.Removals.Surveys != 6 {
		t.Errorf("vetoed %v, would remove %+v (recipients live %d)", run.Vetoed, run.Removals, r0)
	}
	t.Run("a limit of 100% never vetoes", func(t *testing.T) {
		if _, err := e.st.Pool().Exec(ctx, `UPDATE integrations SET veto_max_delete_percent = 100 WHERE id = $1`, e.in.ID); err != nil {
			t.Fatal(err)
		}
		run := e.sync(ctx, microapps.SyncFull)
		e.mustSucceed(run)
		if run.Vetoed {
			t.Error("vetoed under a limit of 100%")
		}
		if s, _, _ := liveCounts(t, e); s != 0 {
			t.Errorf("%d surveys left", s)
		}
	})
}

// Issue 36: the decision is taken once: a run killed after it and resumed by
// another replica keeps it, even if what Qualtrics lists changed meanwhile.
func TestAVetoDecisionSurvivesAKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var empty, armed atomic.Bool
	type kill struct{}
	e := newEnv(t, envOptions{seed: 3, spec: qualtricssim.Spec{Surveys: 6, Recipients: 300}, wrap: emptyListing(&empty),
		syncOpts: func(o *syncer.Options) {
			// Dies right after the decision, before the run is recorded.
			o.AfterSync = func(context.Context, store.Integration, *qualtrics.Client, bool) (int, error) {
				if armed.Load() {
					panic(kill{})
				}
				return 0, nil
			}
		}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	s0, d0, r0 := liveCounts(t, e)
	empty.Store(true)
	armed.Store(true)
	run := e.queue(microapps.SyncFull)
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(kill); !ok {
					panic(r)
				}
			}
		}()
		_, _ = e.sy.RunNow(ctx, e.in.ID, run.ID)
		t.Fatal("the run was not killed")
	}()
	if got, _ := e.st.GetSyncRun(ctx, e.in.ID, run.ID); got.Status != "running" {
		t.Fatalf("the killed run is %s", got.Status)
	}
	// Another replica resumes it; the listing is back meanwhile, and an
	// override came too late: the decision stands.
	armed.Store(false)
	empty.Store(false)
	if err := e.st.SetSyncRunOverrideVeto(ctx, e.in.ID, run.ID); err != nil {
		t.Fatal(err)
	}
	out, err := e.sy.RunNow(ctx, e.in.ID, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.mustSucceed(out)
	if !out.Vetoed || out.Removals.Surveys != 6 {
		t.Errorf("the resumed run: vetoed %v, removals %+v", out.Vetoed, out.Removals)
	}
	if s, d, r := liveCounts(t, e); s != s0 || d != d0 || r != r0 {
		t.Errorf("rows removed: %d/%d/%d of %d/%d/%d", s, d, r, s0, d0, r0)
	}
}
