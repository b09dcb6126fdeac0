package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/syncer/synctest"
)

// adminToken authorises the admin API in every test of the suite.
const adminToken = "reliability-admin-token-0123456789"

// newKeyring returns a fresh keyring and its MICROAPPS_ENCRYPTION_KEYS form.
func newKeyring(t testing.TB) (*seal.Keyring, string) {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	raw := "k1:" + base64.StdEncoding.EncodeToString(key)
	kr, err := seal.ParseKeyring(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kr, raw
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// qsim is one simulated Qualtrics brand served on loopback.
type qsim struct {
	sim   *qualtricssim.Server
	srv   *httptest.Server
	brand *qualtricssim.Brand
	token string // a Brand Administrator's API token
}

type simOptions struct {
	seed   int64
	spec   qualtricssim.Spec
	limits *qualtricssim.Limits // default: none
	now    func() time.Time
}

func newSim(t testing.TB, o simOptions) *qsim {
	t.Helper()
	if o.seed == 0 {
		o.seed = 42
	}
	if o.spec.Surveys == 0 {
		o.spec = qualtricssim.Spec{Surveys: 6, Recipients: 300}
	}
	brand := qualtricssim.Generate(o.seed, o.spec)
	limits := o.limits
	if limits == nil {
		limits = &qualtricssim.Limits{Disabled: true}
	}
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Seed: o.seed, Limits: limits, Now: o.now})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &qsim{sim: sim, srv: srv, brand: brand, token: brand.Users[0].Tokens[0]}
}

func (q *qsim) baseURL() string { return q.srv.URL + "/API/v3/" }

// createIntegration stores an integration of q's brand directly, its token
// sealed as the API would.
func createIntegration(t testing.TB, st *store.Store, kr *seal.Keyring, q *qsim, logging bool) store.Integration {
	t.Helper()
	id := newUUID()
	keyID, sealed, err := kr.Seal([]byte(q.token), []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.CreateIntegration(context.Background(), store.Integration{
		ID: id, Name: "Reliability " + id[:8], BaseURL: q.baseURL(), AuthMethod: "token",
		SecretSealed: sealed, SecretKeyID: keyID, SecretHint: q.token[len(q.token)-4:],
		RequestsPerMinute: 1500, RequestTimeoutSeconds: 10, LoggingEnabled: logging,
		Schedule: microapps.DefaultSchedule, Status: "active",
	}, store.AuditEvent{Actor: "test", Action: "integration.create"})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// queueRun queues a run of kind without River.
func queueRun(t testing.TB, st *store.Store, integrationID string, kind microapps.SyncKind) store.SyncRun {
	t.Helper()
	var run store.SyncRun
	err := st.WithTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		run, _, err = st.QueueSyncRunTx(context.Background(), tx, integrationID, kind, "test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// runSync queues a run and works it in the test's goroutine.
func runSync(t testing.TB, ctx context.Context, sy *syncer.Syncer, st *store.Store, integrationID string, kind microapps.SyncKind) store.SyncRun {
	t.Helper()
	run := queueRun(t, st, integrationID, kind)
	out, err := sy.RunNow(ctx, integrationID, run.ID)
	if err != nil {
		t.Fatalf("%s sync could not be recorded: %v", kind, err)
	}
	return out
}

// waitRun polls a run until it is finished.
func waitRun(t testing.TB, st *store.Store, integrationID string, runID int64, timeout time.Duration) store.SyncRun {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		run, err := st.GetSyncRun(context.Background(), integrationID, runID)
		if err == nil && (run.Status == "succeeded" || run.Status == "failed") {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d not finished after %v: %+v %v", runID, timeout, run, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustSucceed(t testing.TB, run store.SyncRun) {
	t.Helper()
	if run.Status != "succeeded" {
		t.Fatalf("%s run %d: status %s, error %q, warnings %v", run.Kind, run.ID, run.Status, run.Error, run.Warnings)
	}
}

// syncBuffer is an io.Writer safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpResult is a response read in full.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request with an optional JSON body and bearer token.
func call(t testing.TB, c *http.Client, method, url string, body any, bearer string) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

func decode[T any](t testing.TB, r httpResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("status %d, body is not the expected JSON: %v\n%s", r.status, err, r.body)
	}
	return v
}

// serveOnce sends one admin-authorised JSON request to h in-process.
func serveOnce(t testing.TB, h http.Handler, method, path string, body any) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return httpResult{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// checkMatchesSim compares every stored survey, distribution and recipient of
// an integration with the simulator's ground truth.
func checkMatchesSim(t testing.TB, st *store.Store, integrationID string, q *qsim) {
	t.Helper()
	if synctest.MatchesSim(t, st, q.sim, q.brand.ID, integrationID) == 0 {
		t.Errorf("no recipient compared: the simulator's brand is too small to prove anything")
	}
}

var fastClient = synctest.FastClient
