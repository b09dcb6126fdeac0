package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// BenchmarkMyActiveSurveys measures My active surveys through the whole HTTP
// stack of a replica (request ids, access log, metrics, security headers,
// proxy-header sign-in) for random users among 20,000 holding 100,000
// recipient rows, at 16 concurrent requests, next to /livez on the same
// server in the same run.
//
//	go test -run '^$' -bench BenchmarkMyActiveSurveys -benchtime 6000x -count 5 ./cmd/microapps/
func BenchmarkMyActiveSurveys(b *testing.B) {
	dbURL := storetest.NewMigrated(b)
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	storetest.LoadBenchData(b, st)
	st.Close()

	cfg, err := loadConfig(envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL, "MICROAPPS_ENCRYPTION_KEYS": goodKey,
		"MICROAPPS_AUTH_MODE": "header", "MICROAPPS_WORKERS": "0", "MICROAPPS_PUBLIC_URL": "https://surveys.example.com"}), useServe)
	if err != nil {
		b.Fatal(err)
	}
	a, err := replica.New(ctx, cfg.replicaOptions(), newLogger(io.Discard, false, zapcore.InfoLevel))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ts := httptest.NewServer(a.Routes())
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

	b.Run("livez", func(b *testing.B) { loadTest(b, client, ts.URL+"/livez", false) })
	// /readyz is one empty database round trip and no page: the floor under
	// any page that reads PostgreSQL.
	b.Run("readyz", func(b *testing.B) { loadTest(b, client, ts.URL+"/readyz", false) })
	b.Run("my-active-surveys", func(b *testing.B) { loadTest(b, client, ts.URL+"/", true) })
}

const benchConc = 16

// loadTest sends b.N requests from benchConc workers and reports throughput
// and latency percentiles.
func loadTest(b *testing.B, client *http.Client, url string, asUser bool) {
	var next, failed atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < benchConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest("GET", url, nil)
				if asUser {
					req.Header.Set("X-Forwarded-Email", storetest.BenchEmail(rand.IntN(storetest.BenchUsers)))
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
					}
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
