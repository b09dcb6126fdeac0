package syncer_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// fakeMetrics counts call outcomes and can cancel a run after n calls.
type fakeMetrics struct {
	mu       sync.Mutex
	outcomes map[string]int
	retries  int
	finished []string
	calls    atomic.Int64
	cancelAt int64
	cancel   context.CancelFunc
}

func (m *fakeMetrics) ObserveQualtricsCall(_, outcome string, retry bool) {
	m.mu.Lock()
	if m.outcomes == nil {
		m.outcomes = map[string]int{}
	}
	m.outcomes[outcome]++
	if retry {
		m.retries++
	}
	m.mu.Unlock()
	if n := m.calls.Add(1); m.cancel != nil && n == m.cancelAt {
		m.cancel()
	}
}

func (m *fakeMetrics) SyncFinished(kind microapps.SyncKind, result microapps.RunStatus, _ time.Duration, _ string, _ time.Time) {
	m.mu.Lock()
	m.finished = append(m.finished, string(kind)+":"+string(result))
	m.mu.Unlock()
}

func TestARunThrough500s504s429sCompletesWithNothingLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The simulator's clock runs ten seconds per call, so its one-minute
	// rate windows turn over every six calls: a budget of 4 per minute
	// answers a third of the calls 429, without a test that waits minutes.
	var ticks atomic.Int64
	base := time.Now()
	simNow := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * 10 * time.Second) }
	m := &fakeMetrics{}
	e := newEnv(t, envOptions{seed: 3, simNow: simNow,
		limits:   &qualtricssim.Limits{BrandPerMinute: 4, RetryAfter: true},
		syncOpts: func(o *syncer.Options) { o.Metrics = m }})
	e.sim.SetFaults(qualtricssim.Faults{ErrorRate500: 0.08, ErrorRate504: 0.04, TruncateRate: 0.03})

	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	e.sim.SetFaults(qualtricssim.Faults{})
	e.checkMatchesSim(ctx)
	t.Run("the faults happened and were retried", func(t *testing.T) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.outcomes["server_error"] == 0 || m.outcomes["rate_limited"] == 0 || m.retries == 0 {
			t.Errorf("outcomes %v, %d retries", m.outcomes, m.retries)
		}
		if run.APICalls != e.sim.TotalCalls() {
			t.Errorf("run counts %d calls, the simulator saw %d (retries included)", run.APICalls, e.sim.TotalCalls())
		}
		if len(m.finished) != 1 || m.finished[0] != "full:succeeded" {
			t.Errorf("SyncFinished calls %v", m.finished)
		}
	})
}

func TestARevokedTokenFailsCleanlyAndStopsScheduling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	surveysBefore, _ := e.st.ListStoredSurveys(ctx, e.in.ID)
	if err := e.sim.RevokeToken(e.token); err != nil {
		t.Fatal(err)
	}
	run := e.sync(ctx, microapps.SyncIncremental)
	in := e.integration()
	cases := []struct {
		name string
		ok   bool
		got  any
	}{
		{"the run failed with the cause", run.Status == "failed" && strings.Contains(run.Error, "401"), run.Error},
		{"the integration is in error", in.Status == "error", in.Status},
		{"the message tells the admin to replace the token", strings.Contains(in.StatusMessage, "PUT /api/v1/integrations/"+e.in.ID+"/token"), in.StatusMessage},
		{"the message holds no token", !strings.Contains(in.StatusMessage, e.token) && !strings.Contains(run.Error, e.token), in.StatusMessage},
		{"the scheduler skips it", func() bool { _, due := syncer.DueKind(in, time.Now().Add(24*time.Hour)); return !due }(), in.Status},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("got %v", tc.got)
			}
		})
	}
	t.Run("its data stays for the pages", func(t *testing.T) {
		after, _ := e.st.ListStoredSurveys(ctx, e.in.ID)
		if len(after) != len(surveysBefore) || len(after) == 0 {
			t.Errorf("%d surveys before, %d after", len(surveysBefore), len(after))
		}
	})
}

func TestHistoryWithoutLicenceIsAWarning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{syncOpts: func(o *syncer.Options) { o.Now = clock.Now }})
	if err := e.sim.SetDirectoryLicence(e.brand.ID, false); err != nil {
		t.Fatal(err)
	}
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	warned := false
	for _, w := range run.Warnings {
		warned = warned || strings.Contains(w, "no history") && strings.Contains(w, "404")
	}
	if !warned {
		t.Errorf("no warning about the history: %v", run.Warnings)
	}
	if run.Recipients == 0 {
		t.Errorf("no recipients stored from links")
	}
	// Issue 29.7: no history is a fact about the brand, not a warning that
	// makes every full sync read every distribution again.
	t.Run("unchanged full syncs do not read the distributions again", func(t *testing.T) {
		links := e.sim.Calls(qualtricssim.EndpointLinks)
		for range 2 {
			clock.Advance(time.Hour)
			e.mustSucceed(e.sync(ctx, microapps.SyncFull))
		}
		if n := e.sim.Calls(qualtricssim.EndpointLinks) - links; n != 0 {
			t.Errorf("two unchanged full syncs made %d links calls, want 0", n)
		}
	})
	t.Run("once licensed again, the next full sync reads the statuses", func(t *testing.T) {
		_ = e.sim.SetDirectoryLicence(e.brand.ID, true)
		clock.Advance(time.Hour)
		run := e.sync(ctx, microapps.SyncFull)
		e.mustSucceed(run)
		e.checkMatchesSim(ctx)
	})
}

func TestADatacenterNoticeSwitchesTheHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{syncOpts: func(o *syncer.Options) { o.AllowedHosts = []string{"127.0.0.1", "localhost"} }})
	// The notice names a host without a port, as Qualtrics does; localhost
	// reaches the same simulator.
	e.sim.SetFaults(qualtricssim.Faults{ProxyNoticeHost: "localhost"})
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	want := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1) + "/API/v3/"
	if got := e.integration().BaseURL; got != want {
		t.Errorf("base URL %s, want %s", got, want)
	}
	if !strings.Contains(strings.Join(run.Warnings, "\n"), want) {
		t.Errorf("no warning names the new base URL: %v", run.Warnings)
	}
	t.Run("the next run uses the new host and stays there", func(t *testing.T) {
		run := e.sync(ctx, microapps.SyncIncremental)
		e.mustSucceed(run)
		if got := e.integration().BaseURL; got != want {
			t.Errorf("base URL %s, want %s", got, want)
		}
	})
}

func TestAKilledSyncContinuesTheSameRun(t *testing.T) {
	t.Parallel()
	for _, cut := range []int64{1, 4, 15, 40} {
		t.Run("cancelled after "+strconv.FormatInt(cut, 10)+" calls, the same run continues", func(t *testing.T) {
			t.Parallel()
			m := &fakeMetrics{cancelAt: cut}
			e := newEnv(t, envOptions{seed: 11, logging: true, syncOpts: func(o *syncer.Options) { o.Metrics = m }})
			ctx, cancel := context.WithCancel(context.Background())
			m.cancel = cancel
			run := e.queue(microapps.SyncFull)
			if _, err := e.sy.RunNow(ctx, e.in.ID, run.ID); err == nil {
				t.Fatal("a stopped run reported no error")
			}
			killed := time.Now()
			stopped, err := e.st.GetSyncRun(context.Background(), e.in.ID, run.ID)
			if err != nil || stopped.Status != "running" {
				t.Fatalf("a stopped run must stay running for the next job: %+v %v", stopped.Status, err)
			}
			units, err := e.st.ListSyncUnits(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			doneBefore := map[string]bool{}
			for _, u := range units {
				if u.Status == store.UnitDone && u.Kind == store.UnitRecipients {
					doneBefore[u.DistributionID] = true
				}
			}
			m.cancel = nil
			out, err := e.sy.RunNow(context.Background(), e.in.ID, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			e.mustSucceed(out)
			if out.ID != run.ID || out.Progress.Jobs != 2 {
				t.Errorf("run %d finished after %d jobs, want run %d after 2", out.ID, out.Progress.Jobs, run.ID)
			}
			e.checkMatchesSim(context.Background())
			if calls, _ := e.notifier.take(); calls != 0 {
				t.Errorf("the first successful full sync notified %d times", calls)
			}
			// No page of a distribution finished before the stop is read again.
			logs, err := e.st.ListRequestLogs(context.Background(), e.in.ID, killed, 10000)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range logs {
				for d := range doneBefore {
					if strings.Contains(l.Path, d) {
						t.Errorf("distribution %s, done before the stop, read again: %s", d, l.Path)
					}
				}
			}
			t.Logf("%d of %d distributions were done before the stop; %d calls after it", len(doneBefore), len(units), len(logs))
		})
	}
}

func TestARunWorksInSlicesAndStagesLargeDistributions(t *testing.T) {
	t.Parallel()
	// A slice budget of zero time: every slice starts one batch of units, and
	// a staged distribution hands over after each page.
	e := newEnv(t, envOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 3, Recipients: 3000},
		syncOpts: func(o *syncer.Options) { o.SliceBudget = time.Nanosecond }})
	ctx := context.Background()
	run := e.queue(microapps.SyncFull)
	slices, staged := 0, 0
	var out store.SyncRun
	for {
		r, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		slices++
		if !done {
			var n int
			if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_units WHERE run_id = $1 AND staged AND pages > 1`, run.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			staged = max(staged, n)
		}
		if done {
			out = r
			break
		}
		if slices > 2000 {
			t.Fatal("the run never ends")
		}
	}
	e.mustSucceed(out)
	if slices < 5 || out.Progress.Jobs != slices {
		t.Errorf("%d slices, %d jobs recorded", slices, out.Progress.Jobs)
	}
	if staged == 0 {
		t.Error("no distribution was staged over several pages: the test does not exercise staging")
	}
	e.checkMatchesSim(ctx)
	var left int
	if err := e.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_stage_history) + (SELECT count(*) FROM sync_stage_links) + (SELECT count(*) FROM sync_units)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d staged rows or units left after the run", left)
	}
}

func TestADistributionThatKeepsFailingIsAWarning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 8, Recipients: 800},
		syncOpts: func(o *syncer.Options) { o.Now = clock.Now }})
	var bad string
	for _, sv := range e.sim.Surveys(e.brand.ID) {
		for _, d := range e.sim.Distributions(sv.ID) {
			if d.RequestType == "Invite" && len(e.sim.Recipients(d.ID)) > 0 && sv.IsActive && (d.LinkExpiration.IsZero() || d.LinkExpiration.After(time.Now())) {
				bad = d.ID
				break
			}
		}
		if bad != "" {
			break
		}
	}
	if bad == "" {
		t.Fatal("no live invitation in the generated brand")
	}
	e.sim.SetFaults(qualtricssim.Faults{FailPaths: map[string]int{"/distributions/" + bad + "/history": 504}})
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	warned := 0
	for _, w := range run.Warnings {
		if strings.Contains(w, bad) {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("want one warning naming %s, got %v", bad, run.Warnings)
	}
	if run.Progress.UnitsFailed != 1 {
		t.Errorf("units failed %d, want 1", run.Progress.UnitsFailed)
	}
	stored, _ := e.st.ListStoredRecipients(ctx, e.in.ID, bad)
	if len(stored) != 0 {
		t.Errorf("the failing distribution has %d recipients stored", len(stored))
	}
	// Issue 29.2: a failing distribution backs off instead of being read by
	// every incremental.
	t.Run("an incremental within its backoff leaves it alone", func(t *testing.T) {
		before := e.sim.Calls(qualtricssim.EndpointHistory)
		e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
		if n := e.sim.Calls(qualtricssim.EndpointHistory) - before; n != 0 {
			t.Errorf("the incremental right after the failure read history %d times", n)
		}
	})
	t.Run("a run after the backoff retries it and everything is synced once it answers", func(t *testing.T) {
		e.sim.SetFaults(qualtricssim.Faults{})
		clock.Advance(3 * time.Minute)
		before := e.sim.Calls(qualtricssim.EndpointHistory)
		run := e.sync(ctx, microapps.SyncIncremental)
		e.mustSucceed(run)
		if e.sim.Calls(qualtricssim.EndpointHistory) == before {
			t.Error("the next run did not read the failed distribution's history")
		}
		e.checkMatchesSim(ctx)
	})
}

func TestThePlanOfARunFailedAsAnOrphanIsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 3, Recipients: 3000},
		syncOpts: func(o *syncer.Options) { o.SliceBudget = time.Nanosecond }})
	run := e.queue(microapps.SyncFull)
	for range 6 { // a few slices: units planned, a large distribution staged
		if _, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID); err != nil || done {
			t.Fatalf("slice: done %v, %v", done, err)
		}
	}
	count := func() (n int) {
		if err := e.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_units WHERE run_id = $1)
			+ (SELECT count(*) FROM sync_stage_history WHERE run_id = $1) + (SELECT count(*) FROM sync_stage_links WHERE run_id = $1)`,
			run.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count() == 0 {
		t.Fatal("nothing planned or staged after six slices")
	}
	if n, err := e.st.DropFinishedSyncPlans(ctx); err != nil || n != 0 {
		t.Fatalf("a running run's plan was dropped: %d %v", n, err)
	}
	if _, err := e.st.Pool().Exec(ctx, `UPDATE sync_runs SET status = 'failed' WHERE id = $1`, run.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := e.st.DropFinishedSyncPlans(ctx); err != nil || n == 0 {
		t.Fatalf("dropped %d rows, %v", n, err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d rows of the failed run's plan left", n)
	}
}

// seeAnalyze runs check before each of the syncer's analyses.
type seeAnalyze struct {
	syncer.Store
	check func(ctx context.Context)
}

func (s seeAnalyze) AnalyzeIfChanged(ctx context.Context, tables ...string) ([]string, time.Duration, error) {
	s.check(ctx)
	return s.Store.AnalyzeIfChanged(ctx, tables...)
}

// A run's outcome is counted as soon as it is visible: the analysis and the
// clean-up after it (seconds on a busy database) come after. A scrape in
// between saw a finished run with no metric of it, and an alert on a stale
// integration could fire for one that had just synced.
func TestTheOutcomeIsCountedAsSoonAsItIsVisible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := &fakeMetrics{}
	var finishedUncounted atomic.Int64
	var e *env
	e = newEnv(t, envOptions{seed: 5, syncOpts: func(o *syncer.Options) {
		o.Metrics = m
		o.Store = seeAnalyze{Store: o.Store, check: func(ctx context.Context) {
			var finished int
			if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE status IN ('succeeded', 'failed')`).Scan(&finished); err != nil {
				t.Error(err)
			}
			m.mu.Lock()
			counted := len(m.finished)
			m.mu.Unlock()
			if finished > counted {
				finishedUncounted.Add(1)
			}
		}}
	}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	if n := finishedUncounted.Load(); n > 0 {
		t.Fatalf("%d analyses ran after a run's outcome was stored and before it was counted", n)
	}
	if len(m.finished) != 1 {
		t.Fatalf("SyncFinished calls %v", m.finished)
	}
}
