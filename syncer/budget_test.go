package syncer_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// TestTwoIntegrationsOfOneBrandShareItsBudget syncs two integrations of one
// brand at once through two syncers (two replicas) against a simulator that
// enforces limits of the same shape as Qualtrics', per one-second window: the
// two runs need several windows of history calls, and the simulator never sees
// more than the brand's limits in any window and sends no 429.
func TestTwoIntegrationsOfOneBrandShareItsBudget(t *testing.T) {
	t.Parallel()
	const scale = 60
	limits := &qualtricssim.Limits{BrandPerMinute: 120, HistoryPerMinute: 10, LinksPerMinute: 15, RetryAfter: true, TimeScale: scale}
	budget := syncer.BrandLimits{PerMinute: 120, TimeScale: scale, Endpoints: map[string]int{
		qualtrics.EndpointDistributionsHistory: 10, qualtrics.EndpointDistributionsLinks: 15}}
	e := newEnv(t, envOptions{seed: 3, spec: qualtricssim.Spec{Surveys: 12, Recipients: 1200}, limits: limits,
		syncOpts: func(o *syncer.Options) { o.BrandLimits = budget }})
	ctx := context.Background()
	// The second integration: same brand, same database, another replica.
	other := e.createIntegration(false)
	for _, id := range []string{e.in.ID, other.ID} {
		if _, err := e.st.UpdateIntegration(ctx, id, store.AuditEvent{}, func(in *store.Integration) error {
			in.BrandID = e.brand.ID
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	second, err := syncer.New(syncer.Options{Store: e.st, Keyring: e.keyring, AllowedHosts: []string{"127.0.0.1"},
		ClientConfig: fastClient, BrandLimits: budget})
	if err != nil {
		t.Fatal(err)
	}
	runA, runB := e.queue(microapps.SyncFull), queueFor(t, e, other.ID)
	var wg sync.WaitGroup
	var outA, outB store.SyncRun
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); outA, errA = e.sy.RunNow(ctx, e.in.ID, runA.ID) }()
	go func() { defer wg.Done(); outB, errB = second.RunNow(ctx, other.ID, runB.ID) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	e.mustSucceed(outA)
	e.mustSucceed(outB)
	if n := e.sim.Throttled(); n != 0 {
		t.Errorf("the simulator answered 429 %d times", n)
	}
	for key, limit := range map[string]int{e.brand.ID: 120, e.brand.ID + "/history": 10, e.brand.ID + "/links": 15} {
		if got := e.sim.MaxPerWindow(key); got > limit {
			t.Errorf("%s: %d calls in one window, limit %d", key, got, limit)
		}
	}
	if h := e.sim.Calls(qualtricssim.EndpointHistory); h <= 3*10 {
		t.Errorf("only %d history calls: too few to need the budget", h)
	}
	t.Logf("history calls %d (max %d in a window of 1 s, limit 10), links %d (max %d, limit 15), all %d (max %d, limit 120)",
		e.sim.Calls(qualtricssim.EndpointHistory), e.sim.MaxPerWindow(e.brand.ID+"/history"),
		e.sim.Calls(qualtricssim.EndpointLinks), e.sim.MaxPerWindow(e.brand.ID+"/links"),
		e.sim.TotalCalls(), e.sim.MaxPerWindow(e.brand.ID))
}

func queueFor(t *testing.T, e *env, integrationID string) store.SyncRun {
	t.Helper()
	saved := e.in
	e.in = store.Integration{ID: integrationID}
	defer func() { e.in = saved }()
	return e.queue(microapps.SyncFull)
}

// countingStore counts the statements that take rate tokens.
type countingStore struct {
	*store.Store
	takes atomic.Int64
}

func (c *countingStore) TakeRateTokens(ctx context.Context, brandKey string, buckets []store.RateBucket, want int) (int, time.Duration, error) {
	c.takes.Add(1)
	return c.Store.TakeRateTokens(ctx, brandKey, buckets, want)
}

// oneReplicaOfOneBrand is a syncer over a counting store whose brand budget is
// 0.95 × scale calls a second with a burst of 3 (60/min at time scale scale),
// and a client of an integration of that brand.
func oneReplicaOfOneBrand(t *testing.T, scale float64) (*env, *countingStore, *qualtrics.Client) {
	t.Helper()
	budget := syncer.BrandLimits{PerMinute: 60, TimeScale: scale}
	e := newEnv(t, envOptions{})
	cs := &countingStore{Store: e.st}
	in, err := e.st.UpdateIntegration(context.Background(), e.in.ID, store.AuditEvent{}, func(in *store.Integration) error {
		in.BrandID = e.brand.ID
		in.RateLimitEnabled = false
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sy, err := syncer.New(syncer.Options{Store: cs, Keyring: e.keyring, AllowedHosts: []string{"127.0.0.1"},
		ClientConfig: fastClient, BrandLimits: budget})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sy.Client(in)
	if err != nil {
		t.Fatal(err)
	}
	return e, cs, c
}

// TestOneReplicaPollsTheBrandOnce has 30 callers of one replica wait on one
// brand's bucket: one poller takes tokens for all of them, so the statements
// that lock the brand's row stay about one per token, however many wait
// (issue 29, item 6: every waiter polled the row about once per token).
func TestOneReplicaPollsTheBrandOnce(t *testing.T) {
	t.Parallel()
	_, cs, c := oneReplicaOfOneBrand(t, 20)
	const callers, each = 30, 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := c.WhoAmI(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took, takes := time.Since(start), cs.takes.Load()
	t.Logf("%d calls in %v, %d token statements", callers*each, took.Round(time.Millisecond), takes)
	if took < 2*time.Second {
		t.Errorf("%d calls took %v: the budget of 19/s did not hold", callers*each, took)
	}
	if max := int64(2*callers*each + 10); takes > max {
		t.Errorf("%d statements took %d tokens; want at most %d (one poller per replica)", takes, callers*each, max)
	}
}

// TestBrandTokensGoFirstComeFirstServed starts 20 callers 25 ms apart on a
// brand whose bucket gives a token every ~105 ms: they are served in the
// order they came (issue 29, items 3 and 6: units starved in no fixed order).
// Callers served within 50 ms of each other count as served together.
func TestBrandTokensGoFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	_, _, c := oneReplicaOfOneBrand(t, 10)
	const callers = 20
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The first call creates the brand's buckets: callers racing to do
	// that would join the line in no fixed order.
	if _, err := c.WhoAmI(ctx); err != nil {
		t.Fatal(err)
	}
	done := make([]time.Time, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.WhoAmI(ctx); err != nil {
				t.Error(err)
			}
			done[i] = time.Now()
		}()
		time.Sleep(25 * time.Millisecond)
	}
	wg.Wait()
	inversions := 0
	for i := range callers {
		for j := i + 1; j < callers; j++ {
			if done[j].Before(done[i].Add(-50 * time.Millisecond)) {
				inversions++
			}
		}
	}
	if inversions > 0 {
		t.Errorf("%d pairs of callers were served out of order", inversions)
	}
}

// brokenBudget is a store whose rate buckets cannot be read.
type brokenBudget struct{ *store.Store }

func (brokenBudget) TakeRateTokens(context.Context, string, []store.RateBucket, int) (int, time.Duration, error) {
	return 0, 0, errors.New("store: take rate tokens: connection refused")
}

// TestABrokenBudgetIsALimiterError: a database error inside the brand budget
// fails the call as a limiter error, never as a failure of Qualtrics (issue
// 29, items 5 and 6), and every caller waiting hears of it.
func TestABrokenBudgetIsALimiterError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sy, err := syncer.New(syncer.Options{Store: brokenBudget{e.st}, Keyring: e.keyring, AllowedHosts: []string{"127.0.0.1"},
		ClientConfig: fastClient})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sy.Client(e.in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.WhoAmI(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var apiErr *qualtrics.APIError
		if err == nil || !syncer.IsLimiterError(err) || errors.As(err, &apiErr) {
			t.Errorf("err = %v, want a limiter error", err)
		}
	}
	if n := e.sim.TotalCalls(); n != 0 {
		t.Errorf("%d calls reached Qualtrics", n)
	}
}
