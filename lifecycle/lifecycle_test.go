package lifecycle_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/microapps/microapps/lifecycle"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// fakeEvents records what the lifecycle asks of the event service.
type fakeEvents struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (f *fakeEvents) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.fail
}

func (f *fakeEvents) ReapplyPending(context.Context, string, time.Time) (int, error) {
	return 0, f.record("reapply")
}

func (f *fakeEvents) SyncSubscriptions(_ context.Context, _ store.Integration, c *qualtrics.Client, u *url.URL) error {
	if c == nil || u == nil {
		return f.record("subscribe without a client or URL")
	}
	return f.record("subscribe")
}

func (f *fakeEvents) RemoveAll(_ context.Context, _ store.Integration, c *qualtrics.Client) error {
	if c == nil {
		return f.record("remove without a client")
	}
	return f.record("remove")
}

type fakeWindows struct{ checked int }

func (f *fakeWindows) CheckWindows(context.Context, string, time.Time) (int, error) {
	f.checked++
	return 3, nil
}

type env struct {
	t       *testing.T
	ctx     context.Context
	st      *store.Store
	svc     *lifecycle.Service
	events  *fakeEvents
	windows *fakeWindows
	brand   *qualtricssim.Brand
	client  *qualtrics.Client
	clients int // Qualtrics clients built by the lifecycle
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), st: storetest.New(t), events: &fakeEvents{}, windows: &fakeWindows{}}
	e.brand = qualtricssim.Generate(7, qualtricssim.Spec{BrandID: "acme", Surveys: 2, Recipients: 5})
	sim := httptest.NewServer(qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{e.brand}, Seed: 7,
		Limits: &qualtricssim.Limits{Disabled: true}}))
	t.Cleanup(sim.Close)
	var err error
	e.client, err = qualtrics.New(qualtrics.Config{BaseURL: sim.URL + "/API/v3/", AllowedHosts: []string{"127.0.0.1"},
		Auth: qualtrics.Auth{Token: e.brand.Users[0].Tokens[0]}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Insert-only: the tests work the jobs by calling the service.
	jobs, err := river.NewClient(riverpgxv5.New(e.st.Pool()), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = lifecycle.New(lifecycle.Options{Store: e.st, Jobs: jobs, Events: e.events, Windows: e.windows,
		Client: func(store.Integration) (*qualtrics.Client, error) {
			e.clients++
			return e.client, nil
		},
		PublicURL: &url.URL{Scheme: "https", Host: "surveys.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.st.Pool().Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatalf("%v\n%s", err, sql)
	}
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.st.Pool().QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%v\n%s", err, sql)
	}
	return n
}

// integration inserts an integration with a survey, a distribution and
// three recipients.
func (e *env) integration(eventsOn bool) store.Integration {
	e.t.Helper()
	var id string
	if err := e.st.Pool().QueryRow(e.ctx, `INSERT INTO integrations (name, base_url, secret_sealed, secret_key_id, events_enabled)
		VALUES ('Sales', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', $1) RETURNING id`, eventsOn).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	e.exec(`INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, $2, 'Pulse', true)`, id, e.brand.Surveys[0].ID)
	e.exec(`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type) VALUES ($1, 'EMD_1', $2, 'Invite')`,
		id, e.brand.Surveys[0].ID)
	e.exec(`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status)
		SELECT $1, 'EMD_1', 'CID_' || g, $2, 'p' || g || '@example.com', 'Success' FROM generate_series(1, 3) g`, id, e.brand.Surveys[0].ID)
	in, err := e.st.GetIntegration(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (e *env) subscribe(id string) {
	e.t.Helper()
	if err := e.st.PutEventSubscription(e.ctx, store.EventSubscription{IntegrationID: id, SurveyID: e.brand.Surveys[0].ID,
		SubscriptionID: "SUB_1", Topics: "completedResponse", PublicationURL: "https://surveys.example.com/hooks/qualtrics/x"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) removalsQueued(id string) int {
	return e.count(`SELECT count(*) FROM river_job WHERE kind = 'remove_integration' AND args->>'integrationId' = $1`, id)
}

func TestAfterSync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		eventsOn    bool
		subscribed  bool
		firstSync   bool
		eventsFail  bool
		wantCalls   []string
		wantRaised  int
		wantChecked int
		wantErr     bool
	}{
		{name: "events on: waiting events applied, subscriptions kept in step, windows checked",
			eventsOn: true, wantCalls: []string{"reapply", "subscribe"}, wantRaised: 3, wantChecked: 1},
		{name: "the first sync raises nothing", eventsOn: true, firstSync: true, wantCalls: []string{"reapply", "subscribe"}},
		{name: "events turned off: the subscriptions left are removed",
			subscribed: true, wantCalls: []string{"reapply", "remove"}, wantRaised: 3, wantChecked: 1},
		{name: "events off and none left: nothing to remove", wantCalls: []string{"reapply"}, wantRaised: 3, wantChecked: 1},
		{name: "a failing step does not stop the others", eventsOn: true, eventsFail: true,
			wantCalls: []string{"reapply", "subscribe"}, wantRaised: 3, wantChecked: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.integration(tc.eventsOn)
			if tc.subscribed {
				e.subscribe(in.ID)
			}
			if tc.eventsFail {
				e.events.fail = errors.New("Qualtrics said no")
			}
			raised, err := e.svc.AfterSync(e.ctx, in, e.client, tc.firstSync)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if !slices.Equal(e.events.calls, tc.wantCalls) {
				t.Errorf("event service asked %v, want %v", e.events.calls, tc.wantCalls)
			}
			if raised != tc.wantRaised || e.windows.checked != tc.wantChecked {
				t.Errorf("raised %d after %d window checks, want %d after %d", raised, e.windows.checked, tc.wantRaised, tc.wantChecked)
			}
			// The brand's web host is learnt from a survey definition, once.
			got, _ := e.st.GetIntegration(e.ctx, in.ID)
			if got.BrandBaseURL != "https://acme.qualtrics.com" {
				t.Errorf("brand base URL %q", got.BrandBaseURL)
			}
		})
	}
}

func TestAfterSyncWithoutASurveyLeavesTheBrandHostForLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.integration(false)
	e.exec(`DELETE FROM surveys WHERE integration_id = $1`, in.ID)
	if _, err := e.svc.AfterSync(e.ctx, in, e.client, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.GetIntegration(e.ctx, in.ID); got.BrandBaseURL != "" {
		t.Fatalf("brand base URL %q with no survey to read it from", got.BrandBaseURL)
	}
}

func TestDeleteAndRemoval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		subscribed    bool
		delete        bool
		afterDelete   bool
		purge         bool
		wantClients   int
		wantCalls     []string
		wantQueued    int
		wantRemoved   bool
		wantRemaining int
	}{
		{name: "before a delete the subscriptions are removed from Qualtrics", subscribed: true,
			wantClients: 1, wantCalls: []string{"remove"}, wantRemaining: 3},
		{name: "no subscription: no Qualtrics client is even built", wantRemaining: 3},
		{name: "after a delete the removal is queued, and removes the data", delete: true, afterDelete: true,
			wantQueued: 1, wantRemoved: true},
		{name: "a removal lost is queued again by the purge", delete: true, purge: true, wantQueued: 1, wantRemoved: true},
		{name: "a live integration is never removed", afterDelete: true, wantQueued: 1, wantRemaining: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.integration(tc.subscribed)
			if tc.subscribed {
				e.subscribe(in.ID)
			}
			if err := e.svc.BeforeDelete(e.ctx, in); err != nil {
				t.Fatal(err)
			}
			if tc.delete {
				if _, err := e.st.DeleteIntegration(e.ctx, in.ID, store.AuditEvent{Actor: "test", Action: "integration.delete"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.afterDelete {
				if err := e.svc.AfterDelete(e.ctx, in.ID); err != nil {
					t.Fatal(err)
				}
			}
			if tc.purge {
				if err := e.svc.Purge(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if e.clients != tc.wantClients || !slices.Equal(e.events.calls, tc.wantCalls) {
				t.Errorf("%d clients built, event service asked %v; want %d, %v", e.clients, e.events.calls, tc.wantClients, tc.wantCalls)
			}
			if n := e.removalsQueued(in.ID); n != tc.wantQueued {
				t.Fatalf("%d removals queued, want %d", n, tc.wantQueued)
			}
			// Work the queued removal as its job would.
			if tc.wantQueued > 0 {
				if err := e.svc.Remove(e.ctx, in.ID); err != nil {
					t.Fatal(err)
				}
			}
			gone := e.count(`SELECT count(*) FROM integrations WHERE id = $1`, in.ID) == 0
			left := e.count(`SELECT count(*) FROM recipients WHERE integration_id = $1`, in.ID)
			if gone != tc.wantRemoved || left != tc.wantRemaining {
				t.Errorf("integration removed: %v with %d recipients left; want %v with %d", gone, left, tc.wantRemoved, tc.wantRemaining)
			}
		})
	}
}

// The service refuses to be built without what it needs rather than fail
// at the first delete.
func TestNewNeedsAStoreAndJobs(t *testing.T) {
	t.Parallel()
	if _, err := lifecycle.New(lifecycle.Options{}); err == nil {
		t.Fatal("built without a store")
	}
	st := storetest.New(t)
	if _, err := lifecycle.New(lifecycle.Options{Store: st}); err == nil {
		t.Fatal("built without a job client")
	}
}
