package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

const adminToken = "test-admin-token-0123456789"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		raw, err := io.ReadAll(mustOpenSpec(t))
		if err != nil {
			specErr = err
			return
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(raw)
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("openapi.yaml is not valid: %w", err)
			return
		}
		doc.Servers = openapi3.Servers{{URL: "/api/v1"}}
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return specRouter
}

func mustOpenSpec(t testing.TB) io.Reader {
	// The spec is served by the API itself; read it through a bare handler.
	h := api.New(api.Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.yaml", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /openapi.yaml = %d", rec.Code)
	}
	return rec.Body
}

// fakeSyncs records triggers and keeps one queued run per integration, like
// the syncer does through the partial unique index.
type fakeSyncs struct {
	mu       sync.Mutex
	store    *store.Store
	cancels  [][]int64
	triggers int
	// subscriptions records QueueSubscriptions calls as "id:on" or "id:off".
	subscriptions []string
}

func (f *fakeSyncs) QueueSubscriptions(_ context.Context, integrationID string, enabled bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	state := "off"
	if enabled {
		state = "on"
	}
	f.subscriptions = append(f.subscriptions, integrationID+":"+state)
	return nil
}

func (f *fakeSyncs) Trigger(ctx context.Context, integrationID string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (store.SyncRun, bool, error) {
	f.mu.Lock()
	f.triggers++
	f.mu.Unlock()
	var run store.SyncRun
	var created bool
	err := f.store.WithTx(ctx, func(tx pgxTx) error {
		var err error
		run, created, err = f.store.QueueSyncRunTx(ctx, tx, integrationID, kind, trigger)
		return err
	})
	return run, created, err
}

func (f *fakeSyncs) CancelJobs(_ context.Context, ids []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels = append(f.cancels, ids)
	return nil
}

type env struct {
	t      testing.TB
	store  *store.Store
	sim    *qualtricssim.Server
	simURL string
	brand  *qualtricssim.Brand
	server *httptest.Server
	logs   *observer.ObservedLogs
	syncs  *fakeSyncs
	router routers.Router
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, storetest.New(t))
}

// newEnvOn is newEnv on a store of the test's making.
func newEnvOn(t testing.TB, st *store.Store) *env {
	t.Helper()
	brand := qualtricssim.Generate(1, qualtricssim.Spec{BrandID: "brandone", Surveys: 2, Recipients: 20})
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	syncs := &fakeSyncs{store: st}
	h := api.New(api.Options{Service: manage.New(manage.Options{Store: st, Syncs: syncs, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Log: zap.New(core), VerifyTimeout: 10 * time.Second, QueueSubscriptions: syncs.QueueSubscriptions, SealWebhookSecret: func(id, secret string) (string, []byte, error) { return kr.Seal([]byte(secret), []byte("webhook:"+id)) }}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.New(core)})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, store: st, sim: sim, simURL: simSrv.URL + "/API/v3/", brand: brand, server: srv, logs: logs,
		syncs: syncs, router: openAPIRouter(t)}
}

func (e *env) adminTok() string { return e.brand.Users[0].Tokens[0] }
func (e *env) userTok() string  { return e.brand.Users[1].Tokens[0] }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request with the admin token and validates request and response
// against openapi.yaml.
func (e *env) do(method, path string, body any) response {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+adminToken)
}

func (e *env) doAuth(method, path string, body any, auth string) response {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.server.URL+"/api/v1"+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: out}
	e.validate(req, raw, r)
	return r
}

func (e *env) validate(req *http.Request, raw []byte, r response) {
	e.t.Helper()
	vreq := req.Clone(context.Background())
	vreq.URL.Host, vreq.URL.Scheme = "", ""
	vreq.Body = io.NopCloser(bytes.NewReader(raw))
	route, params, err := e.router.FindRoute(vreq)
	if err != nil {
		if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed {
			return // not a documented route, and the API said so
		}
		e.t.Errorf("%s %s answered %d but is not in openapi.yaml: %v", req.Method, req.URL.Path, r.status, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	// Only requests the API accepts must match the spec; rejected ones are the
	// point of many tests.
	if r.status < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			e.t.Errorf("accepted request does not match openapi.yaml: %v", err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.status, Header: r.header,
		Body: io.NopCloser(bytes.NewReader(r.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.t.Errorf("%s %s → %d does not match openapi.yaml: %v\n%s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

func (e *env) createBody(extra map[string]any) map[string]any {
	b := map[string]any{"name": "Customer Success", "functionalGroup": "Customer Success",
		"baseUrl": e.simURL, "token": e.adminTok()}
	for k, v := range extra {
		if v == nil {
			delete(b, k)
			continue
		}
		b[k] = v
	}
	return b
}

func (e *env) create(extra map[string]any) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/integrations", e.createBody(extra))
	if r.status != http.StatusCreated {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

// assertNoSecret fails when any secret shows in the bodies, headers or logs seen so far.
func (e *env) assertNoSecret(bodies []response, secrets ...string) {
	e.t.Helper()
	for _, s := range secrets {
		for _, r := range bodies {
			if bytes.Contains(r.body, []byte(s)) {
				e.t.Errorf("a response body contains a secret: %s", r.body)
			}
			for k, v := range r.header {
				if strings.Contains(strings.Join(v, ","), s) {
					e.t.Errorf("header %s contains a secret", k)
				}
			}
		}
		for _, entry := range e.logs.All() {
			line := entry.Message
			for k, v := range entry.ContextMap() {
				line += fmt.Sprintf(" %s=%v", k, v)
			}
			if strings.Contains(line, s) {
				e.t.Errorf("a log line contains a secret: %s", line)
			}
		}
	}
}

// Issue 31 (info): repeated admin API 401s from one address are throttled.
// A handful of wrong tokens still get 401; a flood gets 429 with
// Retry-After, before its tokens are checked; another address and a valid
// token from it are not affected, and the budget refills with time.
func TestRepeatedWrongAdminTokensAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := api.New(api.Options{Service: manage.New(manage.Options{Store: e.store, Log: zap.NewNop()}), AdminTokens: []string{adminToken}, Log: zap.NewNop(), AuthFailureRate: 5, AuthFailureBurst: 10})
	get := func(remote, auth string) response {
		req := httptest.NewRequest(http.MethodGet, "/integrations", nil)
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		vreq := httptest.NewRequest(http.MethodGet, "/api/v1/integrations", nil)
		e.validate(vreq, nil, r)
		return r
	}
	const attacker = "203.0.113.5:40000"
	for i := range 10 {
		auth := fmt.Sprintf("Bearer wrong-token-%d", i)
		if i%2 == 1 {
			auth = "" // a missing token is a failure too
		}
		if r := get(attacker, auth); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, r.status)
		}
	}
	statuses := map[int]int{}
	for i := range 200 {
		r := get(attacker, fmt.Sprintf("Bearer flood-%d", i))
		statuses[r.status]++
		if r.status == http.StatusTooManyRequests && (r.header.Get("Retry-After") == "" ||
			r.header.Get("Content-Type") != "application/problem+json") {
			t.Fatalf("429 without Retry-After or problem: %v", r.header)
		}
	}
	if statuses[http.StatusTooManyRequests] < 150 {
		t.Errorf("a flood of 200 wrong tokens: %v, want mostly 429", statuses)
	}
	if r := get("198.51.100.7:1234", "Bearer wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("a wrong token from another address: %d, want 401", r.status)
	}
	if r := get("198.51.100.7:1234", "Bearer "+adminToken); r.status != http.StatusOK {
		t.Errorf("the admin token from another address: %d, want 200", r.status)
	}
	// One IPv6 /64 is one source.
	v6 := map[int]int{}
	for i := range 30 {
		v6[get(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), "Bearer wrong").status]++
	}
	if v6[http.StatusTooManyRequests] < 15 {
		t.Errorf("30 wrong tokens from one /64: %v, want 429 past the budget", v6)
	}
	// The budget refills: at 5/s, a second later the source is heard again.
	time.Sleep(1200 * time.Millisecond)
	if r := get(attacker, "Bearer "+adminToken); r.status != http.StatusOK {
		t.Errorf("the admin token from the throttled address after a pause: %d, want 200", r.status)
	}
}
