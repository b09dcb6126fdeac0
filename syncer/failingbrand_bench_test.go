package syncer_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"os"
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

// BenchmarkFailingBrand is issue 29's bad first day: the first full sync of a
// 1M-recipient brand while 3% of its live distributions answer 504 to every
// history call for the first 20 minutes, under the simulator's real limits
// run TimeScale times faster (the syncer's clock too, so its backoffs pass
// at the same pace), worked in River-sized slices. Then incrementals run
// until every distribution is read. It reports:
//
//   - the first full sync's status and time against its floor;
//
//   - failed-distributions-read: how many of the failing ones ended read
//     (target: all), and the incrementals it took;
//
//   - notices: changes handed to the notifier for the failing distributions
//     when they were read at last (target 0: old invitations, read silently);
//
//   - units restarted: distributions whose first history or links page was
//     answered more than once (target 0: no finished distribution is read
//     twice).
//
//     MICROAPPS_BENCH_RECIPIENTS=100000 go test ./syncer/ -run '^$' -bench FailingBrand -benchtime 1x -timeout 60m
//
// MICROAPPS_BENCH_RECIPIENTS (default 1,000,000), MICROAPPS_BENCH_TIMESCALE
// (default 10) and MICROAPPS_BENCH_FAIL_PERMILLE (default 30) change it.
func BenchmarkFailingBrand(b *testing.B) {
	recipients := envInt("MICROAPPS_BENCH_RECIPIENTS", 1_000_000)
	scale := float64(envInt("MICROAPPS_BENCH_TIMESCALE", 10))
	permille := envInt("MICROAPPS_BENCH_FAIL_PERMILLE", 30)
	for range b.N {
		failingBrandOnce(b, recipients, scale, permille)
	}
}

// scaledClock runs scale times faster than the wall clock from its start.
type scaledClock struct {
	start time.Time
	scale float64
}

func (c scaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.scale))
}

func failingBrandOnce(b *testing.B, recipients int, scale float64, permille int) {
	b.StopTimer()
	ctx := context.Background()
	brand := qualtricssim.Generate(1, qualtricssim.Spec{Surveys: max(1, recipients/2500), Recipients: recipients})
	limits := qualtricssim.DefaultLimits()
	limits.TimeScale = scale
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &limits})
	brandID, token := brand.ID, brand.Users[0].Tokens[0]
	brand = nil
	// The failing distributions: permille of the live ones, by hash.
	failing := map[string]bool{}
	faults := qualtricssim.Faults{FailPaths: map[string]int{}}
	live := 0
	now := time.Now()
	for _, sv := range sim.Surveys(brandID) {
		if !sv.IsActive {
			continue
		}
		for _, d := range sim.Distributions(sv.ID) {
			if d.RequestType == qualtricssim.RequestTestEmail || !isLive(d, now) || len(sim.Recipients(d.ID)) == 0 {
				continue
			}
			live++
			h := fnv.New32a()
			_, _ = h.Write([]byte(d.ID))
			if int(h.Sum32()%1000) < permille {
				failing[d.ID] = true
				faults.FailPaths["/distributions/"+d.ID+"/history"] = 504
			}
		}
	}
	sim.SetFaults(faults)
	pages := &pageLog{next: sim, hits: map[string]int{}}
	srv := httptest.NewServer(pages)
	defer srv.Close()

	dbURL := storetest.NewMigrated(b)
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 18})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bi := newBenchIntegration(b, st, srv.URL, token, brandID)
	kr, err := seal.ParseKeyring(bi.keys)
	if err != nil {
		b.Fatal(err)
	}
	clock := scaledClock{start: time.Now(), scale: scale}
	notifier := &fakeNotifier{}
	jobTimeout := time.Duration(float64(time.Minute) / scale)
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Log: zap.NewNop(),
		Notifier: notifier, Now: clock.Now, BrandLimits: syncer.BrandLimits{TimeScale: scale},
		JobTimeout: jobTimeout, SliceBudget: jobTimeout / 2})
	if err != nil {
		b.Fatal(err)
	}
	// The faults end after 20 minutes of the brand's time.
	faultsEnd := time.Duration(float64(20*time.Minute) / scale)
	var once sync.Once
	endFaults := func() { once.Do(func() { sim.SetFaults(qualtricssim.Faults{}) }) }
	timer := time.AfterFunc(faultsEnd, endFaults)
	defer timer.Stop()

	b.StartTimer()
	start := time.Now()
	full := workRun(b, sy, bi.id, bi.runID, jobTimeout)
	fullTook := time.Since(start)
	byEndpoint := map[string]int{
		qualtrics.EndpointDistributionsHistory: sim.Calls(qualtricssim.EndpointHistory),
		qualtrics.EndpointDistributionsLinks:   sim.Calls(qualtricssim.EndpointLinks),
	}
	floor := rateFloor(byEndpoint, sim.TotalCalls()) / scale
	if full.Status != "succeeded" {
		b.Errorf("first full sync: %s: %s", full.Status, full.Error)
	}
	firstFailed := full.Progress.UnitsFailed
	_, _ = notifier.take()

	// Incrementals, one after another, until every failing distribution is
	// read (each waits out its backoff, which the faster clock shortens).
	incrementals, read := 0, 0
	var noticed int
	for deadline := time.Now().Add(time.Duration(float64(3*time.Hour) / scale)); ; {
		if read = readCount(b, st, bi.id, failing); read == len(failing) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(float64(time.Minute) / scale))
		var runID int64
		if err := st.WithTx(ctx, func(tx pgx.Tx) error {
			run, _, err := st.QueueSyncRunTx(ctx, tx, bi.id, microapps.SyncIncremental, "bench")
			runID = run.ID
			return err
		}); err != nil {
			b.Fatal(err)
		}
		run := workRun(b, sy, bi.id, runID, jobTimeout)
		incrementals++
		if run.Status != "succeeded" {
			b.Errorf("incremental %d: %s: %s", incrementals, run.Status, run.Error)
		}
		_, changes := notifier.take()
		for _, c := range changes {
			if failing[c.DistributionID] {
				noticed++
			}
		}
	}
	took := time.Since(start)
	b.StopTimer()
	endFaults()
	restarted, reread := pages.reread(1)
	b.ReportMetric(fullTook.Seconds(), "full-s")
	b.ReportMetric(floor, "floor-s")
	b.ReportMetric(fullTook.Seconds()/floor, "x-floor")
	b.ReportMetric(float64(len(failing)), "failing")
	b.ReportMetric(float64(read), "failing-read")
	b.ReportMetric(float64(noticed), "notices")
	b.ReportMetric(float64(restarted), "units-restarted")
	b.ReportMetric(float64(reread), "pages-reread")
	b.ReportMetric(float64(incrementals), "incrementals")
	b.Logf("%d recipients, %d of %d live distributions failing for the first %v (%v of the brand's time): first full sync %s in %.1f s "+
		"(floor %.1f s, %.3f×), %d units failed, %d warnings; then %d incrementals in %.1f s read %d of the %d; %d changes notified "+
		"for them; %d distributions restarted from page 1, %d pages re-read; %d 429s",
		recipients, len(failing), live, faultsEnd.Round(time.Second), 20*time.Minute, full.Status, fullTook.Seconds(), floor,
		fullTook.Seconds()/floor, firstFailed, len(full.Warnings), incrementals, (took - fullTook).Seconds(), read, len(failing),
		noticed, restarted, reread, sim.Throttled())
	if read != len(failing) || noticed != 0 || restarted != 0 {
		b.Errorf("want every failing distribution read (%d of %d), silently (%d notices), none restarted (%d)", read, len(failing), noticed, restarted)
	}
	fmt.Fprintln(os.Stderr, "failing brand: done")
}

// workRun works a queued run the way River does, a slice per job under the
// job's timeout, until it ends.
func workRun(b *testing.B, sy *syncer.Syncer, integrationID string, runID int64, jobTimeout time.Duration) store.SyncRun {
	b.Helper()
	for slices := 0; slices < 10_000; slices++ {
		jctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		run, done, err := sy.WorkSlice(jctx, integrationID, runID)
		cancel()
		if done {
			return run
		}
		if err != nil && jctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	b.Fatalf("run %d: no end after 10,000 slices", runID)
	return store.SyncRun{}
}

// readCount is how many of ids the integration has read.
func readCount(b *testing.B, st *store.Store, integrationID string, ids map[string]bool) int {
	b.Helper()
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM distributions
		WHERE integration_id = $1 AND qualtrics_id = ANY($2) AND recipients_synced_at IS NOT NULL`, integrationID, list).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
