package syncer_test

import (
	"context"
	"sync"
	"testing"

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
	runA, runB := e.queue(syncer.KindFull), queueFor(t, e, other.ID)
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
	return e.queue(syncer.KindFull)
}
