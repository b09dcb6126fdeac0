package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// BenchmarkSharedBrand is issue 29's shared brand: five integrations of one
// brand (the same simulated brand and token, registered five times with the
// brand's ID) in their first full sync at once, on two replicas (syncers
// with a pool each) of one database, under the simulator's real limits
// (brand 3,000/min, history 300/min, links 500/min, 429 with Retry-After)
// run TimeScale times faster, the brand budget scaled the same way. Each run
// is worked the way River works it: slices, each with a job timeout of
// 60 s ÷ TimeScale (a slice budget of 30 s ÷ TimeScale), one after another.
// It reports:
//
//   - the wall time until every run finished against the brand's floor for
//     the calls all five made, max(history/300, links/500, all/3000)
//     minutes ÷ TimeScale (target ≤ 1.15×);
//
//   - the 429s the simulator sent (target 0);
//
//   - units restarted: distributions whose first history or links page was
//     read (answered 200) more often than once per integration, and pages
//     re-read in all; slices cut by the job timeout.
//
//     MICROAPPS_BENCH_RECIPIENTS=100000 go test ./syncer/ -run '^$' -bench SharedBrand -benchtime 1x -count 3 -timeout 60m
//
// MICROAPPS_BENCH_RECIPIENTS (default 1,000,000: do not run that on a small
// machine), MICROAPPS_BENCH_TIMESCALE (default 10), MICROAPPS_BENCH_INTEGRATIONS
// (default 5) and MICROAPPS_BENCH_JOB_TIMEOUT_MS (default 60 s ÷ TimeScale)
// change the setup; MICROAPPS_BENCH_MAX_S stops the runs after that many
// seconds and reports how far they got (units that restart forever, issue 29
// item 3, keep a run from ending).
func BenchmarkSharedBrand(b *testing.B) {
	recipients := envInt("MICROAPPS_BENCH_RECIPIENTS", 1_000_000)
	scale := float64(envInt("MICROAPPS_BENCH_TIMESCALE", 10))
	integrations := envInt("MICROAPPS_BENCH_INTEGRATIONS", 5)
	jobTimeout := time.Duration(envInt("MICROAPPS_BENCH_JOB_TIMEOUT_MS", int(60_000/scale))) * time.Millisecond
	giveUp := time.Duration(envInt("MICROAPPS_BENCH_MAX_S", 0)) * time.Second
	for range b.N {
		sharedBrandOnce(b, recipients, integrations, scale, jobTimeout, giveUp)
	}
}

// pageLog counts the pages of history and links the simulator answered 200,
// by URL, and which of them were first pages.
type pageLog struct {
	next    http.Handler
	mu      sync.Mutex
	hits    map[string]int
	history []time.Time // when each history call arrived, whatever its answer
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (p *pageLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasSuffix(path, "/history") {
		p.mu.Lock()
		p.history = append(p.history, time.Now())
		p.mu.Unlock()
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.next.ServeHTTP(sw, r)
	if sw.status != http.StatusOK || !(strings.HasSuffix(path, "/history") || strings.HasSuffix(path, "/links")) {
		return
	}
	key := path
	if tok := r.URL.Query().Get("skipToken"); tok != "" {
		key += "?" + tok
	}
	p.mu.Lock()
	p.hits[key]++
	p.mu.Unlock()
}

// reread says how many distributions' listings were started again from the
// first page, and how many pages were read more than once per integration.
func (p *pageLog) reread(perPage int) (restarted, pages int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, n := range p.hits {
		if n <= perPage {
			continue
		}
		pages += n - perPage
		if !strings.Contains(key, "?") {
			restarted++
		}
	}
	return restarted, pages
}

// maxHistoryIn is the most history calls that arrived in any sliding window
// of length d: Qualtrics' minutes need not be the simulator's fixed ones.
func (p *pageLog) maxHistoryIn(d time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := slices.Clone(p.history)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func sharedBrandOnce(b *testing.B, recipients, integrations int, scale float64, jobTimeout, giveUp time.Duration) {
	b.StopTimer()
	ctx := context.Background()
	runCtx, cancelRuns := context.Background(), context.CancelFunc(func() {})
	if giveUp > 0 {
		runCtx, cancelRuns = context.WithTimeout(ctx, giveUp)
	}
	defer cancelRuns()
	genStart := time.Now()
	brand := qualtricssim.Generate(1, qualtricssim.Spec{Surveys: max(1, recipients/2500), Recipients: recipients})
	fmt.Fprintf(os.Stderr, "shared brand: generated %d recipient rows in %s\n", recipients, time.Since(genStart).Round(time.Millisecond))
	limits := qualtricssim.DefaultLimits()
	limits.TimeScale = scale
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &limits})
	brandID, token := brand.ID, brand.Users[0].Tokens[0]
	brand = nil
	pages := &pageLog{next: sim, hits: map[string]int{}}
	srv := httptest.NewServer(pages)
	defer srv.Close()

	dbURL := storetest.NewMigrated(b)
	const replicas = 2
	setup, err := store.Open(ctx, dbURL, store.Options{MaxConns: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	// One keyring (one key "bench") for every integration: each replica
	// opens the secrets of any of them.
	first := newBenchIntegration(b, setup, srv.URL, token, brandID)
	kr, err := seal.ParseKeyring(first.keys)
	if err != nil {
		b.Fatal(err)
	}
	ins := []benchIntegration{first}
	for len(ins) < integrations {
		ins = append(ins, sharedBenchIntegration(b, setup, kr, first.keys, srv.URL, token, brandID))
	}
	syncers := make([]*syncer.Syncer, replicas)
	for i := range syncers {
		// A replica: its own pool, as serve sizes it for 4 workers.
		st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 18})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		syncers[i], err = syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Log: zap.NewNop(),
			BrandLimits: syncer.BrandLimits{TimeScale: scale}, JobTimeout: jobTimeout, SliceBudget: jobTimeout / 2})
		if err != nil {
			b.Fatal(err)
		}
	}

	type outcome struct {
		run              store.SyncRun
		slices, timedOut int
		dbErrors         int
		took             time.Duration
	}
	outs := make([]outcome, len(ins))
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for i, bi := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sy := syncers[i%replicas]
			o := &outs[i]
			for {
				// One River job: a slice under the job's timeout.
				if runCtx.Err() != nil {
					return
				}
				jctx, cancel := context.WithTimeout(runCtx, jobTimeout)
				run, done, err := sy.WorkSlice(jctx, bi.id, bi.runID)
				timedOut := jctx.Err() != nil
				cancel()
				o.slices++
				if done {
					o.run, o.took = run, time.Since(start)
					return
				}
				switch {
				case timedOut:
					o.timedOut++
				case err != nil && errors.Is(err, store.ErrNotFound):
					b.Errorf("integration %d: %v", i, err)
					return
				case err != nil:
					o.dbErrors++
					time.Sleep(100 * time.Millisecond)
				}
				if o.slices > 10_000 {
					b.Errorf("integration %d: no end after %d slices", i, o.slices)
					return
				}
			}
		}()
	}
	// A line every 10 s on stderr: the figures of a long run as it goes.
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "shared brand: %s: %d calls (%d history, %d links), %d 429s\n", time.Since(start).Round(time.Second),
					sim.TotalCalls(), sim.Calls(qualtricssim.EndpointHistory), sim.Calls(qualtricssim.EndpointLinks), sim.Throttled())
			}
		}
	}()
	wg.Wait()
	close(stop)
	took := time.Since(start)
	b.StopTimer()

	byEndpoint := map[string]int{
		qualtrics.EndpointDistributionsHistory: sim.Calls(qualtricssim.EndpointHistory),
		qualtrics.EndpointDistributionsLinks:   sim.Calls(qualtricssim.EndpointLinks),
	}
	floor := rateFloor(byEndpoint, sim.TotalCalls()) / scale
	restarted, reread := pages.reread(len(ins))
	nSlices, timedOut, dbErrors, rows, unfinished := 0, 0, 0, 0, 0
	var each []string
	for i, o := range outs {
		if o.run.Status != "succeeded" {
			unfinished++
			b.Errorf("integration %d: run %q after %d slices: %s", i, o.run.Status, o.slices, o.run.Error)
		}
		nSlices, timedOut, dbErrors, rows = nSlices+o.slices, timedOut+o.timedOut, dbErrors+o.dbErrors, rows+o.run.Recipients
		each = append(each, strconv.FormatFloat(o.took.Seconds(), 'f', 1, 64)+"s")
	}
	slices.Sort(each)
	b.ReportMetric(took.Seconds(), "total-s")
	b.ReportMetric(floor, "floor-s")
	b.ReportMetric(took.Seconds()/floor, "x-floor")
	b.ReportMetric(float64(sim.Throttled()), "429s")
	b.ReportMetric(float64(restarted), "units-restarted")
	b.ReportMetric(float64(reread), "pages-reread")
	b.ReportMetric(float64(timedOut), "slices-timed-out")
	b.ReportMetric(float64(unfinished), "runs-unfinished")
	window := pages.maxHistoryIn(time.Duration(float64(time.Minute) / scale))
	b.ReportMetric(float64(window), "max-history/sliding-min")
	b.Logf("%d integrations × %d recipients (%d rows stored, %d runs unfinished): %.1f s against a floor of %.1f s (%.3f×), runs ended after %v; "+
		"calls: %d history, %d links, %d in all; %d 429s; %d distributions restarted from page 1, %d pages re-read; "+
		"%d slices, %d cut by the job timeout (%v), %d database errors; at most %d history calls in a sliding minute (cap 300)",
		len(ins), recipients, rows, unfinished, took.Seconds(), floor, took.Seconds()/floor, each,
		byEndpoint[qualtrics.EndpointDistributionsHistory], byEndpoint[qualtrics.EndpointDistributionsLinks], sim.TotalCalls(),
		sim.Throttled(), restarted, reread, nSlices, timedOut, jobTimeout, dbErrors, window)
}

// sharedBenchIntegration is newBenchIntegration with a given keyring.
func sharedBenchIntegration(b *testing.B, st *store.Store, kr *seal.Keyring, keys, simURL, token, brandID string) benchIntegration {
	b.Helper()
	ctx := context.Background()
	bi := benchIntegration{id: newUUID(), keys: keys}
	keyID, sealed, err := seal.SealSecret(kr, seal.Credential, bi.id, []byte(token))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateIntegration(ctx, store.Integration{ID: bi.id, Name: "bench", BaseURL: simURL + "/API/v3/",
		AuthMethod: "token", SecretSealed: sealed, SecretKeyID: keyID, RequestsPerMinute: 1500, RequestTimeoutSeconds: 60,
		Schedule: microapps.DefaultSchedule, Status: "active", BrandID: brandID},
		store.AuditEvent{Actor: "bench", Action: "create"}); err != nil {
		b.Fatal(err)
	}
	if err := st.WithTx(ctx, func(tx pgx.Tx) error {
		run, _, err := st.QueueSyncRunTx(ctx, tx, bi.id, microapps.SyncFull, "bench")
		bi.runID = run.ID
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return bi
}
