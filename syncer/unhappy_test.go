package syncer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// liveInvitations are the brand's first n live invitations with recipients,
// in order (all of them for n = 0).
func liveInvitations(t *testing.T, e *env, n int) []qualtricssim.Distribution {
	t.Helper()
	var out []qualtricssim.Distribution
	now := time.Now()
	for _, sv := range e.sim.Surveys(e.brand.ID) {
		if !sv.IsActive {
			continue
		}
		for _, d := range e.sim.Distributions(sv.ID) {
			if d.RequestType == qualtricssim.RequestInvite && isLive(d, now) && len(e.sim.Recipients(d.ID)) > 0 {
				out = append(out, d)
				if len(out) == n {
					return out
				}
			}
		}
	}
	if n > 0 {
		t.Fatalf("the generated brand has %d live invitations, the test needs %d", len(out), n)
	}
	return out
}

// Issue 29.1: a distribution whose recipients the first full sync could not
// read holds old invitations: when a later run reads it, nothing is
// announced; after that first read its recipients announce as usual.
func TestADistributionMissedByTheFirstSyncIsReadSilently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 8, Recipients: 800},
		syncOpts: func(o *syncer.Options) { o.Now = clock.Now }})
	bad := liveInvitations(t, e, 1)[0]
	e.sim.SetFaults(qualtricssim.Faults{FailPaths: map[string]int{"/distributions/" + bad.ID + "/history": 504}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	if e.integration().FirstFullSyncAt == nil {
		t.Fatal("the first full sync, one unit failed, did not count as the first full sync")
	}
	e.sim.SetFaults(qualtricssim.Faults{})
	clock.Advance(time.Hour)
	_, _ = e.notifier.take()
	run := e.sync(ctx, microapps.SyncIncremental)
	e.mustSucceed(run)
	stored, _ := e.st.ListStoredRecipients(ctx, e.in.ID, bad.ID)
	if len(stored) == 0 {
		t.Fatal("the distribution was not read once it answered")
	}
	_, changes := e.notifier.take()
	for _, c := range changes {
		if c.DistributionID == bad.ID {
			t.Errorf("an old invitation was announced when first read: %+v", c)
		}
	}

	t.Run("after that first read, a recipient reached is announced", func(t *testing.T) {
		var pending string
		for _, rc := range e.sim.Recipients(bad.ID) {
			if rc.Status == qualtricssim.StatusPending {
				pending = rc.ContactID
				break
			}
		}
		if pending == "" {
			t.Skip("no pending recipient in the distribution")
		}
		if _, err := e.sim.SetRecipientStatus(bad.ID, pending, qualtricssim.StatusSuccess, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
		_, changes := e.notifier.take()
		found := false
		for _, c := range changes {
			found = found || c.DistributionID == bad.ID && c.ContactID == pending && c.Kind == store.ChangeRecipientDelivered
		}
		if !found {
			t.Errorf("the recipient reached after the silent read was not announced: %v", changes)
		}
	})
}

// Issue 29.2: a first full sync that fails keeps what it finished; the next
// attempt reads only what was left.
func TestAFailedFirstSyncKeepsWhatItFinished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 8, Recipients: 800},
		syncOpts: func(o *syncer.Options) { o.Now = clock.Now; o.FailureBudget = 0.01 }})
	bad := liveInvitations(t, e, 2)
	fails := map[string]int{}
	for _, d := range bad {
		fails["/distributions/"+d.ID+"/history"] = 504
	}
	e.sim.SetFaults(qualtricssim.Faults{FailPaths: fails})
	first := e.sync(ctx, microapps.SyncFull)
	if first.Status != "failed" {
		t.Fatalf("the first attempt %s, want failed (2 units over a 1%% budget)", first.Status)
	}
	e.sim.SetFaults(qualtricssim.Faults{})
	clock.Advance(10 * time.Minute) // past the failed units' backoff
	e.sim.ResetCalls()
	second := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(second)
	if n := e.sim.Calls(qualtricssim.EndpointHistory); n != len(bad) {
		t.Errorf("the second attempt read %d histories, want the %d that failed", n, len(bad))
	}
	e.checkMatchesSim(ctx)
}

// Issue 29.3: a unit that cannot finish inside one job keeps what it read at
// the slice's hard stop and goes on from there in the next; a unit that makes
// no progress at all fails after a few slices instead of restarting forever.
func TestUnitsLongerThanAJobGoOnFromWhereTheyStopped(t *testing.T) {
	t.Parallel()
	const jobTimeout = 400 * time.Millisecond
	e := newEnv(t, envOptions{seed: 4, spec: qualtricssim.Spec{Surveys: 2, Recipients: 900},
		syncOpts: func(o *syncer.Options) {
			o.SliceBudget = time.Millisecond
			o.JobTimeout = jobTimeout
			o.Concurrency = 4
		}})
	e.sim.SetFaults(qualtricssim.Faults{Latency: 60 * time.Millisecond})
	run := e.queue(microapps.SyncFull)
	// Each slice runs as River runs it: on a context that ends at the job's
	// timeout (River retries a slice its timeout stopped). A unit needs
	// several pages of 60 ms, more than one job.
	slices := 0
	for ; slices < 300; slices++ {
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		out, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
		stopped := ctx.Err() != nil
		cancel()
		if err != nil && !stopped {
			t.Fatalf("slice %d: %v", slices, err)
		}
		if done {
			e.mustSucceed(out)
			if out.Progress.UnitsFailed != 0 {
				t.Errorf("%d units failed: %v", out.Progress.UnitsFailed, out.Warnings)
			}
			break
		}
	}
	if slices == 300 {
		t.Fatal("the run did not finish in 300 slices: units restart from their first page")
	}
	e.sim.SetFaults(qualtricssim.Faults{})
	e.checkMatchesSim(context.Background())

	t.Run("a unit that never gets a page through fails with a warning", func(t *testing.T) {
		e.sim.SetFaults(qualtricssim.Faults{Latency: time.Second})
		defer e.sim.SetFaults(qualtricssim.Faults{})
		if _, err := e.st.Pool().Exec(context.Background(),
			`UPDATE distributions SET recipients_synced_at = NULL WHERE integration_id = $1`, e.in.ID); err != nil {
			t.Fatal(err)
		}
		run := e.queue(microapps.SyncIncremental)
		// Survey units read their listing at one second a call: give them
		// a budget that lets them, then starve the recipients units.
		for i := 0; i < 40; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			out, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
			stopped := ctx.Err() != nil
			cancel()
			if err != nil && !stopped {
				t.Fatalf("slice %d: %v", i, err)
			}
			if done {
				if !strings.Contains(strings.Join(out.Warnings, "\n"), "no progress in 4 slices") {
					t.Errorf("no warning names the stalled units: %v", out.Warnings)
				}
				return
			}
		}
		t.Fatal("the run never ended: stalled units restart forever")
	})
}

// Issue 29.10: a run whose integration is paused stops at its next slice.
func TestARunStopsWhenItsIntegrationIsPaused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 3, Recipients: 3000},
		syncOpts: func(o *syncer.Options) { o.SliceBudget = time.Nanosecond }})
	run := e.queue(microapps.SyncFull)
	if _, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID); err != nil || done {
		t.Fatalf("first slice: done %v, %v", done, err)
	}
	if _, err := e.st.Pool().Exec(ctx, `UPDATE integrations SET status = 'paused' WHERE id = $1`, e.in.ID); err != nil {
		t.Fatal(err)
	}
	out, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
	if err != nil || !done {
		t.Fatalf("the slice after the pause: done %v, %v", done, err)
	}
	if out.Status != "failed" || !strings.Contains(out.Error, "paused") {
		t.Errorf("run %s %q, want failed, naming the pause", out.Status, out.Error)
	}
}

// Issue 29.4: one job at a time works a run.
func TestTwoJobsNeverWorkOneRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	run := e.queue(microapps.SyncFull)
	release, err := e.st.HoldSyncRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID); err == nil || !strings.Contains(err.Error(), store.ErrRunBusy.Error()) {
		t.Errorf("a second job worked a held run: %v", err)
	}
	release()
	e.mustSucceed(func() store.SyncRun {
		out, err := e.sy.RunNow(ctx, e.in.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}())
}

// Issue 29.10: a listing whose pages name each other in a cycle (A → B → A)
// fails its unit instead of being read forever.
func TestAPaginationCycleFailsTheUnit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var bad string
	cycle := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if bad == "" || r.URL.Path != "/API/v3/distributions/"+bad+"/history" {
				next.ServeHTTP(w, r)
				return
			}
			to := "A"
			if r.URL.Query().Get("skipToken") == "A" {
				to = "B"
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"result":{"elements":[],"nextPage":"http://%s%s?skipToken=%s"},"meta":{"httpStatus":"200 - OK","requestId":"r"}}`,
				r.Host, r.URL.Path, to)
		})
	}
	e := newEnv(t, envOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 8, Recipients: 800}, wrap: cycle})
	bad = liveInvitations(t, e, 1)[0].ID
	done := make(chan store.SyncRun, 1)
	go func() { done <- e.sync(ctx, microapps.SyncFull) }()
	select {
	case run := <-done:
		e.mustSucceed(run)
		if !strings.Contains(strings.Join(run.Warnings, "\n"), bad) || run.Progress.UnitsFailed != 1 {
			t.Errorf("the cycling distribution did not fail with a warning: %d failed, %v", run.Progress.UnitsFailed, run.Warnings)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the sync still reads the cycling listing after a minute")
	}
}

// Issue 29.2: runs that fail in a row wait longer each time (5, 10, 20
// minutes…), at most their period.
func TestFailedRunsBackOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{syncOpts: func(o *syncer.Options) { o.Now = clock.Now }})
	e.sim.SetFaults(qualtricssim.Faults{FailPaths: map[string]int{"/surveys": 500}})
	var waits []time.Duration
	for range 5 {
		run := e.sync(ctx, microapps.SyncFull)
		if run.Status != "failed" {
			t.Fatalf("run %s, want failed", run.Status)
		}
		next := e.integration().NextFullSyncAt
		waits = append(waits, next.Sub(*run.FinishedAt).Round(time.Minute))
		clock.Advance(time.Hour)
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("waits after each failure %v, want %v", waits, want)
			break
		}
	}
}

// Issue 29.3: a survey with hundreds of distributions whose listing takes
// longer than one job goes on over slices from the page it reached, instead
// of listing them again from page 1 in every slice.
func TestASurveyListingLongerThanAJobGoesOnFromWhereItStopped(t *testing.T) {
	t.Parallel()
	t.Run("from its cursor", func(t *testing.T) { t.Parallel(); longListing(t, false) })
	// A cursor Qualtrics refuses after a slice (an expired skipToken): the
	// listing starts over once, and the run ends.
	t.Run("from its first page when the cursor is refused", func(t *testing.T) { t.Parallel(); longListing(t, true) })
}

func longListing(t *testing.T, refuse bool) {
	// Units stop waiting on Qualtrics half-way through what the job has
	// left (400 ms here): a few listing pages a job.
	const jobTimeout = 800 * time.Millisecond
	const dists, maxPages = 1500, 1500/60 + 1
	var mu sync.Mutex
	firstPages, listingCalls := 0, 0
	var survey string
	refuseNext := false
	slow := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			big := survey != "" && strings.HasSuffix(r.URL.Path, "/distributions") && r.URL.Query().Get("surveyId") == survey
			refused := false
			if big {
				listingCalls++
				if r.URL.Query().Get("skipToken") == "" {
					firstPages++
				} else if refuseNext {
					refuseNext, refused = false, true
				}
			}
			mu.Unlock()
			if refused {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"Invalid skipToken.","errorCode":"GD_2"}}}`))
				return
			}
			if big {
				time.Sleep(90 * time.Millisecond)
			}
			next.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, envOptions{seed: 4, spec: qualtricssim.Spec{Surveys: 2, Recipients: 200}, wrap: slow,
		syncOpts: func(o *syncer.Options) { o.SliceBudget = time.Millisecond; o.JobTimeout = jobTimeout }})
	var sv string
	for _, s := range e.sim.Surveys(e.brand.ID) {
		if s.IsActive {
			sv = s.ID
			break
		}
	}
	// 1,500 past distributions (expired links: no recipients to read): 15
	// pages or more, about 1.5 s of listing against 0.4 s a job.
	for i := range dists {
		send := time.Now().Add(-time.Duration(400+i) * time.Hour).Truncate(time.Second)
		if _, err := e.sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv, SendDate: send, LinkExpiration: send.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	survey = sv
	mu.Unlock()
	run := e.queue(microapps.SyncFull)
	slices := 0
	for ; slices < 100; slices++ {
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		out, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
		stopped := ctx.Err() != nil
		cancel()
		if err != nil && !stopped {
			t.Fatalf("slice %d: %v", slices, err)
		}
		if done {
			e.mustSucceed(out)
			if out.Progress.UnitsFailed != 0 {
				t.Errorf("%d units failed: %v", out.Progress.UnitsFailed, out.Warnings)
			}
			break
		}
		if slices == 0 && refuse {
			mu.Lock()
			refuseNext = true
			mu.Unlock()
		}
	}
	if slices == 100 {
		t.Fatal("the run did not finish in 100 slices: the survey's listing restarts from its first page")
	}
	mu.Lock()
	defer mu.Unlock()
	// A page cut by a job's end is asked again; a listing started over is
	// not, but for the one restart a refused cursor makes.
	restarts := 0
	if refuse {
		restarts = 1
		if refuseNext {
			t.Error("no cursor was refused: the test did not exercise the restart")
		}
	}
	if firstPages > 2+restarts || listingCalls > maxPages*(1+restarts)+slices {
		t.Errorf("the listing's first page was asked %d times, %d listing calls in %d slices", firstPages, listingCalls, slices)
	}
	e.checkMatchesSim(context.Background())
}
