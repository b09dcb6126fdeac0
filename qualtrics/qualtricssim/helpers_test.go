package qualtricssim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow anchors generated data so tests see the same world on every run.
var testNow = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	sim   *Server
	http  *httptest.Server
	brand *Brand
	clock *fakeClock
}

func (f *fixture) adminToken() string { return f.brand.Users[0].Tokens[0] }
func (f *fixture) userToken() string  { return f.brand.Users[1].Tokens[0] }

// newFixture serves one generated brand with rate limits off, so tests opt into limits.
func newFixture(t *testing.T, spec Spec, opts ...func(*Options)) *fixture {
	t.Helper()
	if spec.Now.IsZero() {
		spec.Now = testNow
	}
	b := Generate(42, spec)
	clock := &fakeClock{t: testNow}
	o := Options{Brands: []*Brand{b}, Seed: 42, Now: clock.Now, Limits: &Limits{Disabled: true}}
	for _, fn := range opts {
		fn(&o)
	}
	sim := New(o)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return &fixture{sim: sim, http: ts, brand: b, clock: clock}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) envelope(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %.300s", err, r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	m := r.envelope(t)
	meta, _ := m["meta"].(map[string]any)
	e, _ := meta["error"].(map[string]any)
	code, _ := e["errorCode"].(string)
	return code
}

// page decodes a list answer into raw elements and nextPage.
func (r response) page(t *testing.T) ([]map[string]any, *string) {
	t.Helper()
	var env struct {
		Result struct {
			Elements []map[string]any `json:"elements"`
			NextPage *string          `json:"nextPage"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("list body: %v: %.300s", err, r.body)
	}
	return env.Result.Elements, env.Result.NextPage
}

func do(t *testing.T, method, url string, header http.Header, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (f *fixture) get(t *testing.T, path, token string) response {
	t.Helper()
	return getURL(t, f.http.URL+"/API/v3/"+path, token)
}

func getURL(t *testing.T, url, token string) response {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("X-API-TOKEN", token)
	}
	return do(t, http.MethodGet, url, h, nil)
}

// walk follows nextPage verbatim from the first page and returns every element and page size.
func walk(t *testing.T, first, token string) (elements []map[string]any, sizes []int) {
	t.Helper()
	url := first
	for n := 0; ; n++ {
		if n > 10000 {
			t.Fatal("pagination does not end")
		}
		r := getURL(t, url, token)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, r.status, r.body)
		}
		els, next := r.page(t)
		elements = append(elements, els...)
		sizes = append(sizes, len(els))
		if next == nil {
			return elements, sizes
		}
		url = *next
	}
}

// fixturesDir finds the recorded responses beside the checkout; CI must have them.
func fixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "qualtrics-fixtures")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("recorded Qualtrics fixtures missing at %s (CI must provide them): %v", dir, err)
		}
		t.Skipf("recorded Qualtrics fixtures not found at %s; skipping the comparison outside CI", dir)
	}
	return dir
}

// shape maps JSON paths (result, meta, meta.error, result.elements[]) to their sorted key sets;
// element keys are the union over all elements.
func shape(t *testing.T, body []byte) map[string][]string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("shape: %v", err)
	}
	out := map[string][]string{"": keys(m)}
	if meta, ok := m["meta"].(map[string]any); ok {
		out["meta"] = keys(meta)
		if e, ok := meta["error"].(map[string]any); ok {
			out["meta.error"] = keys(e)
		}
	}
	if res, ok := m["result"].(map[string]any); ok {
		out["result"] = keys(res)
		if els, ok := res["elements"].([]any); ok {
			union := map[string]any{}
			for _, e := range els {
				for k := range e.(map[string]any) {
					union[k] = nil
				}
			}
			if len(els) > 0 {
				out["result.elements[]"] = keys(union)
			}
		}
	}
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keyString(ks []string) string { return strings.Join(ks, ",") }

func httptestRequest(target, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("X-API-TOKEN", token)
	return r
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
