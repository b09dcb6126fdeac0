package reliability

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
	"go.uber.org/zap"
)

// callCounter counts the Qualtrics calls of a run by outcome and can act
// when the n-th call is made.
type callCounter struct {
	mu       sync.Mutex
	outcomes map[string]int
	calls    atomic.Int64
	at       int64
	fn       func()
}

func (c *callCounter) ObserveQualtricsCall(_, outcome string, _ bool) {
	c.mu.Lock()
	if c.outcomes == nil {
		c.outcomes = map[string]int{}
	}
	c.outcomes[outcome]++
	c.mu.Unlock()
	if n := c.calls.Add(1); c.fn != nil && n == c.at {
		c.fn()
	}
}

func (c *callCounter) SyncFinished(microapps.SyncKind, microapps.RunStatus, time.Duration, string, time.Time) {
}

func (c *callCounter) count(outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outcomes[outcome]
}

func (c *callCounter) reset() {
	c.mu.Lock()
	c.outcomes = nil
	c.mu.Unlock()
	c.calls.Store(0)
}

// TestQualtricsFaults runs a full sync under each kind of Qualtrics trouble,
// checks it ends in a clear state, then lets the faults stop and checks the
// next run reaches exactly the simulator's data.
func TestQualtricsFaults(t *testing.T) {
	t.Parallel()
	type faultCase struct {
		name    string
		spec    qualtricssim.Spec
		faults  qualtricssim.Faults
		limits  *qualtricssim.Limits
		ticking bool               // the simulator's clock runs 10 s per call, so its minute windows turn over quickly
		timeout time.Duration      // client timeout per call; default the integration's 10 s
		during  func(*qsim) func() // returns what to do at the 12th call
		want    microapps.RunStatus
		retried bool // the faults must have cost extra calls
		check   func(*testing.T, store.SyncRun, *callCounter, *qsim, store.Integration)
	}
	small := qualtricssim.Spec{Surveys: 3, Recipients: 60}
	cases := []faultCase{
		{name: "1% of calls answered 500 are retried and the run succeeds", spec: qualtricssim.Spec{Surveys: 60, Recipients: 1500},
			faults: qualtricssim.Faults{ErrorRate500: 0.01}, want: "succeeded", retried: true,
			check: func(t *testing.T, run store.SyncRun, c *callCounter, _ *qsim, _ store.Integration) {
				if c.count("server_error") == 0 {
					t.Errorf("no 500 was injected in %d calls; the case proves nothing", c.calls.Load())
				}
			}},
		{name: "504 gateway pages are retried and the run succeeds", faults: qualtricssim.Faults{ErrorRate504: 0.05}, want: "succeeded", retried: true,
			check: func(t *testing.T, _ store.SyncRun, c *callCounter, _ *qsim, _ store.Integration) {
				if c.count("server_error") == 0 {
					t.Errorf("no 504 was injected in %d calls", c.calls.Load())
				}
			}},
		{name: "a 429 storm with Retry-After is waited out and the run succeeds", ticking: true,
			limits: &qualtricssim.Limits{BrandPerMinute: 4, RetryAfter: true}, want: "succeeded", retried: true,
			check: func(t *testing.T, _ store.SyncRun, c *callCounter, _ *qsim, _ store.Integration) {
				if c.count("rate_limited") < 10 {
					t.Errorf("only %d calls were rate limited: not a storm", c.count("rate_limited"))
				}
			}},
		{name: "a 429 storm without Retry-After is backed off and the run succeeds", ticking: true,
			limits: &qualtricssim.Limits{BrandPerMinute: 4, RetryAfter: false}, want: "succeeded", retried: true,
			check: func(t *testing.T, _ store.SyncRun, c *callCounter, _ *qsim, _ store.Integration) {
				if c.count("rate_limited") < 10 {
					t.Errorf("only %d calls were rate limited: not a storm", c.count("rate_limited"))
				}
			}},
		{name: "responses just under the timeout are slow but the run succeeds", spec: small,
			faults: qualtricssim.Faults{Latency: 250 * time.Millisecond}, timeout: 400 * time.Millisecond, want: "succeeded"},
		{name: "responses past the timeout fail the run with a timeout error", spec: small,
			faults: qualtricssim.Faults{Latency: 400 * time.Millisecond}, timeout: 150 * time.Millisecond, want: "failed",
			check: func(t *testing.T, run store.SyncRun, c *callCounter, _ *qsim, in store.Integration) {
				if !strings.Contains(strings.ToLower(run.Error), "timeout") && !strings.Contains(strings.ToLower(run.Error), "deadline") {
					t.Errorf("error %q does not say the calls timed out", run.Error)
				}
				if c.count("network_error") == 0 {
					t.Errorf("no call ended as a network error: %v", c.outcomes)
				}
				if in.Status != "active" {
					t.Errorf("a transient failure put the integration in %q", in.Status)
				}
			}},
		{name: "truncated JSON pages are retried and the run succeeds", faults: qualtricssim.Faults{TruncateRate: 0.05}, want: "succeeded", retried: true},
		{name: "a token revoked mid-sync fails the run and puts the integration in error",
			during: func(q *qsim) func() { return func() { _ = q.sim.RevokeToken(q.token) } }, want: "failed",
			check: func(t *testing.T, run store.SyncRun, _ *callCounter, q *qsim, in store.Integration) {
				if !strings.Contains(run.Error, "401") {
					t.Errorf("run error %q does not name the 401", run.Error)
				}
				if in.Status != "error" || !strings.Contains(in.StatusMessage, "/token") {
					t.Errorf("integration %q %q, want error with advice to replace the token", in.Status, in.StatusMessage)
				}
				if strings.Contains(run.Error+in.StatusMessage, q.token) {
					t.Errorf("the token is in the run's error or the integration's message")
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && tc.spec.Recipients > 300 {
				t.Skip("large brand: skipped under -short")
			}
			ctx := context.Background()
			o := simOptions{seed: 7, spec: tc.spec, limits: tc.limits}
			if tc.ticking {
				var ticks atomic.Int64
				base := time.Now()
				o.now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * 10 * time.Second) }
			}
			q := newSim(t, o)
			st := storetest.New(t)
			kr, _ := newKeyring(t)
			in := createIntegration(t, st, kr, q, false)
			counter := &callCounter{}
			sy, err := syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Metrics: counter,
				ClientConfig: func(c *qualtrics.Config) {
					fastClient(c)
					if tc.timeout > 0 {
						c.Timeout = tc.timeout
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.during != nil {
				counter.at, counter.fn = 12, tc.during(q)
			}
			q.sim.SetFaults(tc.faults)
			start := time.Now()
			run := runSync(t, ctx, sy, st, in.ID, microapps.SyncFull)
			t.Logf("faulty run: %s in %v, %d calls %v, error %q", run.Status, time.Since(start).Round(time.Millisecond), run.APICalls, counter.outcomes, run.Error)
			if run.Status != tc.want {
				t.Fatalf("run %s (error %q), want %s", run.Status, run.Error, tc.want)
			}
			if run.Status == "failed" && run.Error == "" {
				t.Errorf("a failed run without an error")
			}
			if run.FinishedAt == nil {
				t.Errorf("the run has no finish time")
			}
			if int64(run.APICalls) != counter.calls.Load() {
				t.Errorf("the run counts %d calls, %d were made", run.APICalls, counter.calls.Load())
			}
			if tc.check != nil {
				tc.check(t, run, counter, q, integrationOf(t, st, in.ID))
			}

			// The faults stop. A revoked token is replaced through the
			// admin API, the way an admin follows the integration's message.
			q.sim.SetFaults(qualtricssim.Faults{})
			q.sim.SetLimits(qualtricssim.Limits{Disabled: true})
			counter.fn = nil
			if integrationOf(t, st, in.ID).Status == "error" {
				_ = q.sim.RestoreToken(q.token)
				putToken(t, st, kr, in.ID, q.token)
			}
			faultyCalls := counter.calls.Load()
			counter.reset()
			next := runSync(t, ctx, sy, st, in.ID, microapps.SyncFull)
			mustSucceed(t, next)
			if tc.retried && faultyCalls <= counter.calls.Load() {
				t.Errorf("the faulty run made %d calls, a clean one %d: no fault was retried", faultyCalls, counter.calls.Load())
			}
			checkMatchesSim(t, st, in.ID, q)
			if got := integrationOf(t, st, in.ID); got.Status != "active" || got.FirstFullSyncAt == nil {
				t.Errorf("after recovery the integration is %q (first full sync %v)", got.Status, got.FirstFullSyncAt)
			}
		})
	}
}

func integrationOf(t testing.TB, st *store.Store, id string) store.Integration {
	t.Helper()
	in, err := st.GetIntegration(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// putToken replaces an integration's token through the admin API.
func putToken(t testing.TB, st *store.Store, kr *seal.Keyring, id, token string) {
	t.Helper()
	h := api.New(api.Options{Service: manage.New(manage.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Log: zap.NewNop(), VerifyTimeout: 10 * time.Second}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
	r := serveOnce(t, h, "PUT", "/integrations/"+id+"/token", map[string]string{"token": token})
	if r.status != 204 {
		t.Fatalf("PUT token: %d %s", r.status, r.body)
	}
}
