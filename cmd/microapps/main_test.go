package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/store/storetest"
)

// syncBuffer is an io.Writer safe for the server goroutine and the test.
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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeRefusesAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	env := envOf(map[string]string{
		"MICROAPPS_DATABASE_URL":    dbURL,
		"MICROAPPS_ENCRYPTION_KEYS": goodKey,
		"MICROAPPS_AUTH_MODE":       "header",
		"MICROAPPS_HTTP_ADDR":       freeAddr(t),
	})
	err := run(context.Background(), []string{"serve"}, env, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "run `microapps migrate up`") {
		t.Fatalf("err = %v, want the migrate-up advice", err)
	}
}

func TestMigrateUpDownUpThroughTheCommand(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	env := envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL})
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	current := fmt.Sprintf("schema %d of %d", latest, latest)
	for _, step := range []struct{ arg, want string }{
		{"up", current},
		{"down", fmt.Sprintf("schema 0 of %d", latest)},
		{"up", current},
		{"version", current},
	} {
		var out syncBuffer
		if err := run(context.Background(), []string{"migrate", step.arg}, env, &out); err != nil {
			t.Fatalf("migrate %s: %v", step.arg, err)
		}
		if !strings.Contains(out.String(), step.want) {
			t.Fatalf("migrate %s printed %q, want %q", step.arg, out.String(), step.want)
		}
	}
	if err := run(context.Background(), []string{"migrate", "sideways"}, env, &syncBuffer{}); err == nil {
		t.Fatal("unknown direction accepted")
	}
}

func TestUnknownCommandShowsUsage(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"frobnicate"}, envOf(nil), &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "usage: microapps") {
		t.Fatalf("err = %v", err)
	}
	var out syncBuffer
	if err := run(context.Background(), []string{"version"}, envOf(nil), &out); err != nil || !strings.HasPrefix(out.String(), "microapps ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
}

func TestServeIsReadyThenShutsDownCleanly(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewMigrated(t)
	addr := freeAddr(t)
	env := envOf(map[string]string{
		"MICROAPPS_DATABASE_URL":    dbURL,
		"MICROAPPS_ENCRYPTION_KEYS": goodKey,
		"MICROAPPS_AUTH_MODE":       "header",
		"MICROAPPS_HTTP_ADDR":       addr,
		"MICROAPPS_WORKERS":         "2",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, &out) }()

	base := "http://" + addr
	waitReady(t, base, done, &out)
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("no X-Request-Id on the response (%v)", err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/livez")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("livez: %v %v", resp, err)
	}
	resp.Body.Close()

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v on shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s")
	}
	t.Logf("shutdown took %v", time.Since(start))
	logs := out.String()
	for _, want := range []string{`"msg":"listening"`, `"msg":"http request"`, `"route":"/readyz"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	// Issue 31 (info): /metrics on the public listener is worth one warning.
	if n := strings.Count(logs, "MICROAPPS_METRICS_ADDR"); n != 1 || !strings.Contains(logs, `"level":"warn","time"`) {
		t.Errorf("%d warnings about /metrics on the public listener, want 1:\n%s", n, logs)
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Error("server still answers after shutdown")
	}
}
