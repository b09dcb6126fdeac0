package syncer_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
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
	srv := httptest.NewServer(sim)
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
		FullSyncEvery: time.Hour, IncrementalSyncEvery: 15 * time.Minute, Status: "active",
	}, store.AuditEvent{Actor: "test", Action: "integration.create"})
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// sync queues a run of kind and works it without River.
func (e *env) sync(ctx context.Context, kind string) store.SyncRun {
	e.t.Helper()
	run := e.queue(kind)
	out, err := e.sy.RunNow(ctx, e.in.ID, run.ID)
	if err != nil {
		e.t.Fatalf("run %s sync: %v", kind, err)
	}
	return out
}

func (e *env) queue(kind string) store.SyncRun {
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

// isLive mirrors the sync's rule: history and links are read for these.
func isLive(d qualtricssim.Distribution, now time.Time) bool {
	return d.RequestType != qualtricssim.RequestTestEmail && (d.LinkExpiration.IsZero() || d.LinkExpiration.After(now))
}

// checkMatchesSim compares every stored survey, distribution and recipient
// with the simulator's ground truth.
func (e *env) checkMatchesSim(ctx context.Context) {
	t := e.t
	t.Helper()
	now := time.Now()
	surveys, err := e.st.ListStoredSurveys(ctx, e.in.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]store.StoredSurvey{}
	for _, s := range surveys {
		stored[s.SurveyInput.ID] = s
	}
	truth := e.sim.Surveys(e.brand.ID)
	if len(surveys) != len(truth) {
		t.Fatalf("stored %d surveys, the simulator holds %d", len(surveys), len(truth))
	}
	dists, err := e.st.ListStoredDistributions(ctx, e.in.ID)
	if err != nil {
		t.Fatal(err)
	}
	storedDists := map[string]store.StoredDistribution{}
	for _, d := range dists {
		storedDists[d.ID] = d
	}
	wantDists := 0
	for _, sv := range truth {
		got, ok := stored[sv.ID]
		if !ok {
			t.Fatalf("survey %s missing", sv.ID)
		}
		if got.Name != sv.Name || got.IsActive != sv.IsActive || got.OwnerID != sv.OwnerID || got.DeletedAt != nil {
			t.Errorf("survey %s: stored %+v, want name %q active %v owner %s", sv.ID, got, sv.Name, sv.IsActive, sv.OwnerID)
		}
		if !got.LastModified.Equal(sv.LastModifiedDate.Truncate(time.Second)) || !got.CreationDate.Equal(sv.CreationDate.Truncate(time.Second)) {
			t.Errorf("survey %s: dates %v/%v, want %v/%v", sv.ID, got.CreationDate, got.LastModified, sv.CreationDate, sv.LastModifiedDate)
		}
		if !sv.IsActive {
			continue
		}
		if !got.EndDate.Equal(sv.EndDate) || got.ResponsesAuditable != sv.ResponseCounts.Auditable || got.DetailsSyncedAt == nil {
			t.Errorf("survey %s details: end %v auditable %d, want %v %d", sv.ID, got.EndDate, got.ResponsesAuditable, sv.EndDate, sv.ResponseCounts.Auditable)
		}
		for _, d := range e.sim.Distributions(sv.ID) {
			wantDists++
			gd, ok := storedDists[d.ID]
			if !ok {
				t.Fatalf("distribution %s of %s missing", d.ID, sv.ID)
			}
			if gd.SurveyID != sv.ID || gd.RequestType != d.RequestType || gd.ParentDistributionID != d.ParentDistributionID ||
				gd.Stats != store.DistributionStats(d.Stats) || !gd.LinkExpiration.Equal(d.LinkExpiration) || gd.Subject != d.Headers.Subject ||
				gd.DeletedAt != nil || gd.Snapshots < 1 {
				t.Errorf("distribution %s: stored %+v, want %+v", d.ID, gd, d)
			}
			e.checkRecipients(ctx, d, isLive(d, now))
		}
	}
	activeDists := 0
	for _, d := range dists {
		if stored[d.SurveyID].IsActive {
			activeDists++
		}
	}
	if activeDists != wantDists {
		t.Errorf("stored %d distributions of active surveys, want %d", activeDists, wantDists)
	}
}

func (e *env) checkRecipients(ctx context.Context, d qualtricssim.Distribution, live bool) {
	t := e.t
	t.Helper()
	got, err := e.st.ListStoredRecipients(ctx, e.in.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !live {
		if len(got) != 0 {
			t.Errorf("distribution %s (%s, expires %v) is not live but has %d recipients", d.ID, d.RequestType, d.LinkExpiration, len(got))
		}
		return
	}
	want := e.sim.Recipients(d.ID)
	if len(got) != len(want) {
		t.Fatalf("distribution %s: %d recipients stored, simulator holds %d", d.ID, len(got), len(want))
	}
	byContact := map[string]store.StoredRecipient{}
	for _, r := range got {
		byContact[r.ContactID] = r
	}
	for _, w := range want {
		g, ok := byContact[w.ContactID]
		if !ok {
			t.Fatalf("recipient %s of %s missing", w.ContactID, d.ID)
		}
		email := strings.ToLower(strings.TrimSpace(w.Email))
		if g.Email != email || g.Status != w.Status || g.RespondLink != w.Link || g.ContactLookupID != w.ContactLookupID ||
			g.FirstName != w.FirstName || g.LastName != w.LastName || g.SurveyID != d.SurveyID || g.ResponseID != w.ResponseID ||
			g.Unsubscribed != w.Unsubscribed || g.DeletedAt != nil {
			t.Errorf("recipient %s of %s: stored %+v, want %+v", w.ContactID, d.ID, g, w)
		}
		if (g.SentAt == nil) != w.SentAt.IsZero() || (g.SentAt != nil && !g.SentAt.Equal(w.SentAt)) {
			t.Errorf("recipient %s of %s: sentAt %v, want %v", w.ContactID, d.ID, g.SentAt, w.SentAt)
		}
	}
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

// fastClient makes retries quick and lifts the client's per-endpoint caps
// (history 300/min), which would only make tests wait.
func fastClient(c *qualtrics.Config) {
	c.BackoffBase, c.BackoffMax, c.MaxRetryAfter = time.Millisecond, 5*time.Millisecond, 10*time.Millisecond
	c.MaxAttempts = 8
	c.EndpointLimits = map[string]int{qualtrics.EndpointDistributionsHistory: 0, qualtrics.EndpointDistributionsLinks: 0}
}
