package syncer_test

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
)

// BenchmarkLargeBrand is the sync at the scale of a large customer: a brand
// of 1,000,000 generated recipient rows (400 surveys) served by a simulator
// that enforces Qualtrics' limits (brand 3,000/min, history 300/min, links
// 500/min, 429 with Retry-After beyond), run TimeScale times faster, with the
// syncer's brand budget scaled the same way (Options.BrandLimits.TimeScale,
// set here only). The first full sync runs in a child process, as `serve`
// would, for its peak RSS. It reports:
//
//   - the first full sync's wall time against the rate-limit floor of the
//     calls it made, max(history/300, links/500, all/3000) minutes, divided
//     by the time scale (target ≤ 1.15×);
//
//   - the 429s the simulator sent (target 0) and the child's peak RSS;
//
//   - the calls of one simulated day of the default schedule (a full sync
//     every hour, an incremental every 15 minutes, verifyEvery 24 h), with
//     about 1% of the live distributions moving each hour, as shares of the
//     brand's daily history budget (300 × 1,440) and whole budget (3,000 ×
//     1,440) (target ≤ 20% of the history budget).
//
//     go test ./syncer/ -run '^$' -bench LargeBrand -benchtime 1x -timeout 60m
//
// MICROAPPS_BENCH_RECIPIENTS and MICROAPPS_BENCH_TIMESCALE change the size
// (default 1,000,000) and the time scale (default 10).
func BenchmarkLargeBrand(b *testing.B) {
	recipients := envInt("MICROAPPS_BENCH_RECIPIENTS", 1_000_000)
	scale := float64(envInt("MICROAPPS_BENCH_TIMESCALE", 10))
	for range b.N {
		largeBrandOnce(b, recipients, scale)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func largeBrandOnce(b *testing.B, recipients int, scale float64) {
	b.StopTimer()
	ctx := context.Background()
	genStart := time.Now()
	brand := qualtricssim.Generate(1, qualtricssim.Spec{Surveys: 400, Recipients: recipients})
	limits := qualtricssim.DefaultLimits()
	limits.TimeScale = scale
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &limits})
	brandID, token := brand.ID, brand.Users[0].Tokens[0]
	brand = nil
	srv := httptest.NewServer(sim)
	defer srv.Close()
	b.Logf("generated %d recipient rows in %s", recipients, time.Since(genStart).Round(time.Second))

	dbURL := storetest.NewMigrated(b)
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bi := newBenchIntegration(b, st, srv.URL, token, brandID)

	b.StartTimer()
	res := syncInChild(b, dbURL, bi, nil, "BENCH_TIMESCALE="+strconv.FormatFloat(scale, 'f', -1, 64))
	b.StopTimer()
	floor := rateFloor(res.ByEndpoint, res.APICalls) / scale
	b.ReportMetric(res.Seconds, "first-full-s")
	b.ReportMetric(floor, "floor-s")
	b.ReportMetric(res.Seconds/floor, "x-floor")
	b.ReportMetric(float64(res.PeakRSSKiB)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(sim.Throttled()), "429s")
	b.ReportMetric(float64(res.Recipients), "recipients")
	b.ReportMetric(float64(res.APICalls), "api-calls")
	b.Logf("first full sync: %d recipients, %d calls %v, %d units, %d jobs; %.1f s against a floor of %.1f s (%.3f×); peak RSS %.1f MiB; %d 429s",
		res.Recipients, res.APICalls, res.ByEndpoint, res.Units, res.Jobs, res.Seconds, floor, res.Seconds/floor,
		float64(res.PeakRSSKiB)/1024, sim.Throttled())

	inc := unchangedIncremental(b, st, bi, sim)
	b.ReportMetric(inc.seconds, "unchanged-incr-s")
	b.ReportMetric(inc.seconds/inc.floor, "unchanged-incr-x-floor")
	b.ReportMetric(inc.dbSeconds, "unchanged-incr-db-s")
	b.Logf("an incremental of the unchanged brand: %d calls %v, %.2f s against a floor of %.2f s (%.3f×); database time %.2f s",
		inc.calls, inc.byEndpoint, inc.seconds, inc.floor, inc.seconds/inc.floor, inc.dbSeconds)

	day := simulateDay(b, st, bi, sim, brandID)
	history := float64(day[qualtricssim.EndpointHistory])
	total := 0
	for _, n := range day {
		total += n
	}
	b.ReportMetric(100*history/(300*1440), "%-history-budget/day")
	b.ReportMetric(100*float64(total)/(3000*1440), "%-brand-budget/day")
	b.ReportMetric(100*float64(total)/(300*1440), "%-all-calls-vs-history-budget/day")
	b.Logf("one day of the default schedule: %d calls %v: history %.1f%% of the daily history budget; all calls %.1f%% of the brand's daily budget (%.1f%% of the history budget)",
		total, day, 100*history/(300*1440), 100*float64(total)/(3000*1440), 100*float64(total)/(300*1440))
}

type incrementalResult struct {
	seconds, floor, dbSeconds float64
	calls                     int
	byEndpoint                map[string]int
}

// unchangedIncremental runs one incremental of the brand as the first full
// sync left it, under Qualtrics' limits in real time (an incremental is
// mostly list calls, 3,000 a minute), and measures its wall time against the
// floor of its own calls and the database time it cost
// (pg_stat_database.active_time: the time the database's backends spent
// running statements).
func unchangedIncremental(b *testing.B, st *store.Store, bi benchIntegration, sim *qualtricssim.Server) incrementalResult {
	const scale = 1
	limits := qualtricssim.DefaultLimits()
	sim.SetLimits(limits)
	ctx := context.Background()
	kr, err := seal.ParseKeyring(bi.keys)
	if err != nil {
		b.Fatal(err)
	}
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, ClientConfig: fastClient,
		Log: zap.NewNop(), BrandLimits: syncer.BrandLimits{TimeScale: scale}})
	if err != nil {
		b.Fatal(err)
	}
	activeTime := func() float64 {
		var ms float64
		// The statistics of this backend's own transaction are flushed at its end.
		if err := st.Pool().QueryRow(ctx, `SELECT pg_stat_force_next_flush()`).Scan(new(any)); err != nil {
			b.Logf("pg_stat_force_next_flush: %v", err)
		}
		if err := st.Pool().QueryRow(ctx, `SELECT active_time FROM pg_stat_database WHERE datname = current_database()`).Scan(&ms); err != nil {
			b.Fatal(err)
		}
		return ms / 1000
	}
	var run store.SyncRun
	if err := st.WithTx(ctx, func(tx pgx.Tx) error {
		run, _, err = st.QueueSyncRunTx(ctx, tx, bi.id, microapps.SyncIncremental, "bench")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(11 * time.Second) // earlier work's statistics reported first
	db0 := activeTime()
	start := time.Now()
	out, err := sy.RunNow(ctx, bi.id, run.ID)
	if err != nil || out.Status != "succeeded" {
		b.Fatalf("incremental: %v %s %q", err, out.Status, out.Error)
	}
	secs := time.Since(start).Seconds()
	time.Sleep(11 * time.Second) // idle backends report their statistics within 10 s
	return incrementalResult{seconds: secs, floor: rateFloor(out.APICallsByEndpoint, out.APICalls) / scale,
		dbSeconds: activeTime() - db0, calls: out.APICalls, byEndpoint: out.APICallsByEndpoint}
}

// rateFloor is the shortest time, in seconds, Qualtrics' limits allow for
// the calls of a run.
func rateFloor(byEndpoint map[string]int, total int) float64 {
	return 60 * math.Max(float64(total)/3000, math.Max(float64(byEndpoint[qualtrics.EndpointDistributionsHistory])/300,
		float64(byEndpoint[qualtrics.EndpointDistributionsLinks])/500))
}

// simulateDay runs the default schedule for 24 hours of a fake clock (a full
// sync each hour, incrementals every 15 minutes in between), each hour moving
// about 1% of the live distributions, and returns the simulator's calls by
// endpoint over the day. Limits are off: only the calls are counted.
func simulateDay(b *testing.B, st *store.Store, bi benchIntegration, sim *qualtricssim.Server, brandID string) map[string]int {
	ctx := context.Background()
	integrationID := bi.id
	kr, err := seal.ParseKeyring(bi.keys)
	if err != nil {
		b.Fatal(err)
	}
	sim.SetLimits(qualtricssim.Limits{Disabled: true})
	clock := time.Now()
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, ClientConfig: fastClient,
		Log: zap.NewNop(), BrandLimits: syncer.BrandLimits{Disabled: true}, Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	var live []qualtricssim.Distribution
	for _, sv := range sim.Surveys(brandID) {
		for _, d := range sim.Distributions(sv.ID) {
			if isLive(d, clock) && sv.IsActive {
				live = append(live, d)
			}
		}
	}
	rng := mrand.New(mrand.NewPCG(7, 7))
	endpoints := []string{qualtricssim.EndpointHistory, qualtricssim.EndpointLinks}
	before := map[string]int{}
	for _, e := range endpoints {
		before[e] = sim.Calls(e)
	}
	totalBefore := sim.TotalCalls()
	for step := 1; step <= 96; step++ {
		clock = clock.Add(15 * time.Minute)
		if step%4 == 1 {
			for range max(1, len(live)/100) {
				d := live[rng.IntN(len(live))]
				rs := sim.Recipients(d.ID)
				if len(rs) == 0 {
					continue
				}
				r := rs[rng.IntN(len(rs))]
				_, _ = sim.SetRecipientStatus(d.ID, r.ContactID, qualtricssim.StatusSurveyFinished, clock)
			}
		}
		kind := microapps.SyncIncremental
		if step%4 == 0 {
			kind = microapps.SyncFull
		}
		var run store.SyncRun
		if err := st.WithTx(ctx, func(tx pgx.Tx) error {
			var err error
			run, _, err = st.QueueSyncRunTx(ctx, tx, integrationID, kind, "bench")
			return err
		}); err != nil {
			b.Fatal(err)
		}
		out, err := sy.RunNow(ctx, integrationID, run.ID)
		if err != nil {
			b.Fatal(err)
		}
		if out.Status != "succeeded" {
			b.Fatalf("day step %d (%s): %s %q", step, kind, out.Status, out.Error)
		}
	}
	day := map[string]int{}
	for _, e := range endpoints {
		day[e] = sim.Calls(e) - before[e]
	}
	day["other"] = sim.TotalCalls() - totalBefore - day[qualtricssim.EndpointHistory] - day[qualtricssim.EndpointLinks]
	return day
}
