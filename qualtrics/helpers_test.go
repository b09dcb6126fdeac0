package qualtrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const testToken = "tok-SECRET-do-not-leak-1234"

// recorder collects RequestEvents from concurrent calls.
type recorder struct {
	mu     sync.Mutex
	events []RequestEvent
}

func (r *recorder) observe(e RequestEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []RequestEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RequestEvent(nil), r.events...)
}

// newTestClient points a client at srv with backoffs short enough for tests.
func newTestClient(t *testing.T, srv *httptest.Server, mod func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{
		BaseURL:      srv.URL,
		AllowedHosts: []string{"127.0.0.1"},
		Auth:         Auth{Token: testToken},
		Timeout:      5 * time.Second,
		BackoffBase:  time.Millisecond,
		BackoffMax:   5 * time.Millisecond,
		Observe:      rec.observe,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func okEnvelope(result string) string {
	return `{"result":` + result + `,"meta":{"httpStatus":"200 - OK","requestId":"req-ok"}}`
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// sharedFixtures locates the recorded real responses beside the checkout:
// {repo root}/../shared/qualtrics-fixtures. CI must have them; a developer
// machine without them skips.
func sharedFixtures(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("no go.mod above %s", dir)
		}
		root = parent
	}
	fx := filepath.Join(root, "..", "shared", "qualtrics-fixtures")
	if _, err := os.Stat(filepath.Join(fx, "README.md")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("recorded Qualtrics fixtures missing at %s (CI must lay shared/ beside the checkout): %v", fx, err)
		}
		t.Skipf("recorded Qualtrics fixtures not found at %s; skipping (set up shared/ beside the checkout to run)", fx)
	}
	return fx
}

func readShared(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read recorded fixture: %v", err)
	}
	return b
}

func collect[T any](t *testing.T, seq func(func([]T, error) bool)) ([][]T, error) {
	t.Helper()
	var pages [][]T
	for p, err := range seq {
		if err != nil {
			return pages, err
		}
		pages = append(pages, p)
	}
	return pages, nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
