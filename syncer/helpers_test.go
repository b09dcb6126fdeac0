package syncer_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/syncer/synctest"
)

// env is one integration synced from one simulated brand into a fresh database.
type env struct {
	t        *testing.T
	st       *store.Store
	sim      *qualtricssim.Server
	srv      *httptest.Server
	sy       *syncer.Syncer
	brand    *qualtricssim.Brand
	in       store.Integration
	token    string
	keyring  *seal.Keyring
	notifier *fakeNotifier
}

type envOptions struct {
	spec     qualtricssim.Spec
	seed     int64
	logging  bool
	limits   *qualtricssim.Limits
	store    *store.Store // share a database between envs
	simNow   func() time.Time
	syncOpts func(*syncer.Options)
	// wrap, when set, wraps the simulator's handler (answers of a test's own).
	wrap func(http.Handler) http.Handler
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.spec.Surveys == 0 {
		o.spec = qualtricssim.Spec{Surveys: 6, Recipients: 300}
	}
	if o.seed == 0 {
		o.seed = 42
	}
	brand := qualtricssim.Generate(o.seed, o.spec)
	limits := o.limits
	if limits == nil {
		limits = &qualtricssim.Limits{Disabled: true}
	}
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Seed: o.seed, Limits: limits, Now: o.simNow})
	var h http.Handler = sim
	if o.wrap != nil {
		h = o.wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	st := o.store
	if st == nil {
		st = storetest.New(t)
	}
	kr := testKeyring(t)
	e := &env{t: t, st: st, sim: sim, srv: srv, brand: brand, keyring: kr, token: brand.Users[0].Tokens[0], notifier: &fakeNotifier{}}
	e.in = e.createIntegration(o.logging)
	opts := syncer.Options{
		Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Notifier: e.notifier,
		ClientConfig: fastClient,
	}
	if o.syncOpts != nil {
		o.syncOpts(&opts)
	}
	sy, err := syncer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.sy = sy
	return e
}

func testKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kr, err := seal.ParseKeyring("test:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (e *env) createIntegration(logging bool) store.Integration {
	e.t.Helper()
	id := newUUID()
	keyID, sealed, err := e.keyring.Seal([]byte(e.token), []byte(id))
	if err != nil {
		e.t.Fatal(err)
	}
	in, err := e.st.CreateIntegration(context.Background(), store.Integration{
		ID: id, Name: "Test " + id[:8], BaseURL: e.srv.URL + "/API/v3/", AuthMethod: "token",
		SecretSealed: sealed, SecretKeyID: keyID, SecretHint: e.token[len(e.token)-4:],
		RequestsPerMinute: 1500, RequestTimeoutSeconds: 10, LoggingEnabled: logging,
		Schedule: microapps.DefaultSchedule, Status: "active",
	}, store.AuditEvent{Actor: "test", Action: "integration.create"})
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// sync queues a run of kind and works it without River.
func (e *env) sync(ctx context.Context, kind microapps.SyncKind) store.SyncRun {
	e.t.Helper()
	run := e.queue(kind)
	out, err := e.sy.RunNow(ctx, e.in.ID, run.ID)
	if err != nil {
		e.t.Fatalf("run %s sync: %v", kind, err)
	}
	return out
}

func (e *env) queue(kind microapps.SyncKind) store.SyncRun {
	e.t.Helper()
	var run store.SyncRun
	err := e.st.WithTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		run, _, err = e.st.QueueSyncRunTx(context.Background(), tx, e.in.ID, kind, "test")
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

func (e *env) mustSucceed(run store.SyncRun) {
	e.t.Helper()
	if run.Status != "succeeded" {
		e.t.Fatalf("%s run %d: status %s, error %q, warnings %v", run.Kind, run.ID, run.Status, run.Error, run.Warnings)
	}
}

func (e *env) integration() store.Integration {
	e.t.Helper()
	in, err := e.st.GetIntegration(context.Background(), e.in.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// fakeNotifier records what it was handed.
type fakeNotifier struct {
	mu      sync.Mutex
	calls   int
	changes []store.Change
}

func (f *fakeNotifier) OnChanges(_ context.Context, _ pgx.Tx, _ store.Integration, changes []store.Change, _ time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.changes = append(f.changes, changes...)
	return len(changes), nil
}

func (f *fakeNotifier) take() (int, []store.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls, ch := f.calls, f.changes
	f.calls, f.changes = 0, nil
	return calls, ch
}

func kinds(changes []store.Change) map[string]int {
	m := map[string]int{}
	for _, c := range changes {
		m[c.Kind]++
	}
	return m
}

// checkMatchesSim compares every stored survey, distribution and recipient
// with the simulator's ground truth.
func (e *env) checkMatchesSim(context.Context) {
	e.t.Helper()
	synctest.MatchesSim(e.t, e.st, e.sim, e.brand.ID, e.in.ID)
}

var (
	fastClient = synctest.FastClient
	isLive     = synctest.IsLive
)

// testClock is a syncer clock that a test moves forward (backoffs, verify
// periods) while the simulator keeps real time.
type testClock struct {
	mu   sync.Mutex
	skew time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}
