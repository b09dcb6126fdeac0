package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/web"
)

// BenchmarkFleet runs a fleet the size of a large customer on two replicas
// with the production settings (4 sync workers each, the leader's scheduler
// every 30 s): 1,000 integrations, each its own brand on a simulator that
// enforces Qualtrics' limits in real time; most brands are small, a few have
// 100,000 recipient rows. After every first full sync succeeded, the
// incrementals of all 1,000 integrations come due spread over five minutes
// (three times the steady rate of a 15-minute schedule) while the large
// brands run full syncs, and it reports the scheduling lag of those
// incrementals (due → started), the 429s the simulator sent and the most
// database connections open at once against the two pools' sizes.
//
//	go test ./reliability/ -run '^$' -bench Fleet -benchtime 1x -timeout 60m
//
// MICROAPPS_BENCH_FLEET (default 1000), MICROAPPS_BENCH_LARGE (default 4) and
// MICROAPPS_BENCH_WINDOW (seconds, default 300) change the number of
// integrations, of large brands and the window the incrementals come due in.
func BenchmarkFleet(b *testing.B) {
	for range b.N {
		fleetOnce(b)
	}
}

func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

func fleetOnce(b *testing.B) {
	b.StopTimer()
	ctx := context.Background()
	fleet, large := benchEnv("MICROAPPS_BENCH_FLEET", 1000), benchEnv("MICROAPPS_BENCH_LARGE", 4)
	brands := make([]*qualtricssim.Brand, fleet)
	for i := range brands {
		spec := qualtricssim.Spec{Surveys: 3, Recipients: 60}
		if i < large {
			spec = qualtricssim.Spec{Surveys: 100, Recipients: 100_000}
		}
		brands[i] = qualtricssim.Generate(int64(1000+i), spec)
	}
	limits := qualtricssim.DefaultLimits()
	sim := qualtricssim.New(qualtricssim.Options{Brands: brands, Limits: &limits})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	dbURL := storetest.NewMigrated(b)
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 4, AppName: "fleet-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	kr, _ := newKeyring(b)
	ids := make([]string, fleet)
	for i, br := range brands {
		id := newUUID()
		token := br.Users[0].Tokens[0]
		keyID, sealed, err := seal.SealSecret(kr, seal.Credential, id, []byte(token))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateIntegration(ctx, store.Integration{
			ID: id, Name: fmt.Sprintf("Group %d", i), BaseURL: srv.URL + "/API/v3/", AuthMethod: "token",
			SecretSealed: sealed, SecretKeyID: keyID, SecretHint: token[len(token)-4:], BrandID: br.ID,
			RequestsPerMinute: 1500, RequestTimeoutSeconds: 60,
			Schedule: microapps.DefaultSchedule, Status: "active",
		}, store.AuditEvent{Actor: "bench", Action: "integration.create"}); err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	brands = nil

	// Connections: sampled every 200 ms for the whole benchmark.
	var maxConns atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go func() {
		for sampleCtx.Err() == nil {
			var n int64
			if err := st.Pool().QueryRow(sampleCtx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND application_name = 'microapps'`).Scan(&n); err == nil && n > maxConns.Load() {
				maxConns.Store(n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	const workers = 4
	// Each replica's pool (replica), plus the connection River's
	// listener hijacks from it, which the pool then replaces.
	poolSize := int64(2 * (replica.PoolSize(workers) + 1))
	b.StartTimer()
	start := time.Now()
	for range 2 {
		rep, err := replica.New(ctx, replica.Options{
			DatabaseURL: dbURL, Keyring: kr, AdminTokens: []string{adminToken},
			AuthMode: web.AuthHeader, AuthHeader: "X-Forwarded-Email",
			TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			QualtricsAllowedHosts: []string{"127.0.0.1"}, Workers: workers,
		}, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		if err := rep.River().Start(rctx); err != nil {
			b.Fatal(err)
		}
		defer func() {
			stopCtx, c := context.WithTimeout(context.Background(), 30*time.Second)
			defer c()
			if err := rep.River().Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
				_ = rep.River().StopAndCancel(stopCtx)
			}
			cancel()
			rep.Close()
		}()
	}

	// Every first full sync.
	waitFor(b, st, 30*time.Minute, `SELECT count(*) FROM integrations WHERE first_full_sync_at IS NULL`, 0)
	firstAll := time.Since(start)
	b.Logf("%d first full syncs done after %s (%d 429s so far)", fleet, firstAll.Round(time.Second), sim.Throttled())

	// The incrementals of the whole fleet come due over five minutes; the
	// large brands start a full sync at once.
	window := time.Duration(benchEnv("MICROAPPS_BENCH_WINDOW", 300)) * time.Second
	due := map[string]time.Time{}
	base := time.Now()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, id := range ids {
		due[id] = base.Add(time.Duration(rng.Int64N(int64(window))))
	}
	for i, id := range ids {
		next := due[id]
		if _, err := st.UpdateIntegration(ctx, id, store.AuditEvent{}, func(in *store.Integration) error {
			in.NextIncrementalSyncAt = &next
			if i < large {
				now := time.Now()
				in.NextFullSyncAt = &now
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	measureFrom := time.Now()
	// Wait until every integration has started an incremental (or a full,
	// for the large ones) queued after its due time.
	deadline := time.Now().Add(window + 5*time.Minute)
	var lags []time.Duration
	for {
		rows, err := st.Pool().Query(ctx, `SELECT DISTINCT ON (integration_id) integration_id::text, started_at FROM sync_runs
			WHERE queued_at >= $1 AND started_at IS NOT NULL AND kind = 'incremental'
			ORDER BY integration_id, started_at`, measureFrom)
		if err != nil {
			b.Fatal(err)
		}
		lags = lags[:0]
		for rows.Next() {
			var id string
			var started time.Time
			if err := rows.Scan(&id, &started); err != nil {
				b.Fatal(err)
			}
			lags = append(lags, max(0, started.Sub(due[id])))
		}
		rows.Close()
		if len(lags) >= fleet-large || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	b.StopTimer()
	stopSampling()
	if len(lags) == 0 {
		b.Fatal("no incremental started")
	}
	slices.Sort(lags)
	p := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	b.ReportMetric(p(0.5).Seconds(), "lag-p50-s")
	b.ReportMetric(p(0.99).Seconds(), "lag-p99-s")
	b.ReportMetric(lags[len(lags)-1].Seconds(), "lag-max-s")
	b.ReportMetric(float64(sim.Throttled()), "429s")
	b.ReportMetric(float64(maxConns.Load()), "max-conns")
	b.ReportMetric(float64(poolSize), "pool-conns")
	b.ReportMetric(firstAll.Seconds(), "first-fulls-s")
	b.Logf("%d incrementals measured of %d: lag p50 %s, p99 %s, max %s; %d 429s; at most %d connections open (pools: %d)",
		len(lags), fleet-large, p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond),
		sim.Throttled(), maxConns.Load(), poolSize)
}

func waitFor(b *testing.B, st *store.Store, timeout time.Duration, query string, want int) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := st.Pool().QueryRow(context.Background(), query).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d after %s, want %d", query, n, timeout, want)
		}
		time.Sleep(2 * time.Second)
	}
}
