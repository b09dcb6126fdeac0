package syncer_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
)

// BenchmarkFullSync syncs a generated brand of 200 surveys from the simulator
// (limits off) into a fresh database. The sync runs in a child process so its
// peak RSS (VmHWM) is the sync's alone, not the simulator's, and PostgreSQL's
// raw COPY rate for as many recipient rows is measured in the same iteration.
//
//	go test ./syncer/ -run '^$' -bench FullSync -benchtime 1x -count 3
func BenchmarkFullSync(b *testing.B) {
	for _, n := range []int{100_000, 200_000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			for range b.N {
				benchOnce(b, n)
			}
		})
	}
}

type childResult struct {
	Recipients int            `json:"recipients"`
	APICalls   int            `json:"apiCalls"`
	Seconds    float64        `json:"seconds"`
	PeakRSSKiB int            `json:"peakRssKiB"`
	Status     string         `json:"status"`
	Error      string         `json:"error"`
	ByEndpoint map[string]int `json:"byEndpoint"`
	Jobs       int            `json:"jobs"`
	Units      int            `json:"units"`
}

func benchOnce(b *testing.B, recipients int) {
	b.StopTimer()
	ctx := context.Background()
	brand := qualtricssim.Generate(1, qualtricssim.Spec{Surveys: 200, Recipients: recipients})
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &qualtricssim.Limits{Disabled: true}})
	brand = nil
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dbURL := storetest.NewMigrated(b)
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	// The brand's admin token: Generate is deterministic, so regenerate users only.
	token := qualtricssim.Generate(1, qualtricssim.Spec{Surveys: 1, Recipients: 1}).Users[0].Tokens[0]
	bi := newBenchIntegration(b, st, srv.URL, token, "")

	var args []string
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		args = append(args, "-test.cpuprofile", p)
	}
	b.StartTimer()
	res := syncInChild(b, dbURL, bi, args)
	b.StopTimer()

	// PostgreSQL's own rate: COPY as many recipient rows into a table shaped
	// like recipients, indexes included, on the same server, now.
	copyRate := rawCopyRate(b, st, sim, res.Recipients)
	rate := float64(res.Recipients) / res.Seconds
	b.ReportMetric(rate, "recipients/s")
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(100*rate/copyRate, "%-of-copy")
	b.ReportMetric(float64(res.PeakRSSKiB)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(res.APICalls), "api-calls")
	b.ReportMetric(float64(res.Recipients), "recipients")
}

func rawCopyRate(b *testing.B, st *store.Store, sim *qualtricssim.Server, n int) float64 {
	rows := make([][]any, 0, n)
	for _, sid := range sim.BrandIDs() {
		for _, sv := range sim.Surveys(sid) {
			for _, d := range sim.Distributions(sv.ID) {
				for _, r := range sim.Recipients(d.ID) {
					if len(rows) == n {
						break
					}
					rows = append(rows, []any{d.ID, r.ContactID, sv.ID, strings.ToLower(strings.TrimSpace(r.Email)), r.FirstName,
						r.LastName, r.ContactLookupID, r.Status, r.Link, r.ResponseID, nullTime(r.SentAt), nullTime(r.OpenedAt),
						nullTime(r.ResponseStartedAt), nullTime(r.ResponseCompletedAt), nullTime(r.LinkExpiration), r.Unsubscribed})
				}
			}
		}
	}
	// One COPY of a few seconds is at the mercy of a noisy neighbour: take
	// the median of three, each into a fresh table.
	rates := make([]float64, 3)
	for i := range rates {
		rates[i] = copyOnce(b, st, rows)
	}
	slices.Sort(rates)
	return rates[1]
}

func copyOnce(b *testing.B, st *store.Store, rows [][]any) float64 {
	ctx := context.Background()
	id := newUUID()
	if _, err := st.Pool().Exec(ctx, `DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE recipients INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"bench_copy"},
		[]string{"distribution_id", "contact_id", "survey_id", "email", "first_name", "last_name", "contact_lookup_id", "status",
			"respond_link", "response_id", "sent_at", "opened_at", "response_started_at", "response_completed_at", "link_expiration",
			"unsubscribed", "integration_id"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i >= len(rows) {
					return nil, nil
				}
				r := append(rows[i][:len(rows[i]):len(rows[i])], id)
				i++
				return r, nil
			}
		}()))
	if err != nil {
		b.Fatal(err)
	}
	return float64(len(rows)) / time.Since(start).Seconds()
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// benchIntegration is an integration stored for a benchmark, with a full
// sync queued.
type benchIntegration struct {
	id    string
	keys  string // the keyring spec its token is sealed with
	runID int64
}

// newBenchIntegration stores an integration of the simulator at simURL with
// token (sealed under a fresh key) and queues its first full sync.
func newBenchIntegration(b *testing.B, st *store.Store, simURL, token, brandID string) benchIntegration {
	b.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keys := "bench:" + base64.StdEncoding.EncodeToString(key)
	kr, err := seal.ParseKeyring(keys)
	if err != nil {
		b.Fatal(err)
	}
	return sharedBenchIntegration(b, st, kr, keys, simURL, token, brandID)
}

// syncInChild works an integration's queued run in a child process
// (TestBenchChild), so that its peak RSS is the sync's alone, and returns
// what it reported.
func syncInChild(b *testing.B, dbURL string, bi benchIntegration, args []string, env ...string) childResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run", "^TestBenchChild$", "-test.count", "1", "-test.timeout", "2h"}, args...)...)
	cmd.Env = append(append(os.Environ(), "MICROAPPS_BENCH_CHILD=1", "BENCH_DB="+dbURL, "BENCH_KEYS="+bi.keys,
		"BENCH_INTEGRATION="+bi.id, "BENCH_RUN="+strconv.FormatInt(bi.runID, 10)), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	var res childResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "BENCH_RESULT "); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatal(err)
			}
		}
	}
	if res.Status != "succeeded" {
		b.Fatalf("sync %s: %s\n%s", res.Status, res.Error, out)
	}
	return res
}

// TestBenchChild is the benchmark's child process; it does nothing in a
// normal test run.
func TestBenchChild(t *testing.T) {
	if os.Getenv("MICROAPPS_BENCH_CHILD") != "1" {
		return
	}
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("BENCH_DB"), store.Options{MaxConns: 12}) // as serve with one worker
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.ParseKeyring(os.Getenv("BENCH_KEYS"))
	if err != nil {
		t.Fatal(err)
	}
	opts := syncer.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, ClientConfig: fastClient, Log: zap.NewNop(),
		BrandLimits: syncer.BrandLimits{Disabled: true}}
	if k, err := strconv.ParseFloat(os.Getenv("BENCH_TIMESCALE"), 64); err == nil && k > 0 {
		// The large-brand benchmark: Qualtrics' limits, k times faster, and the
		// client as in production.
		opts.BrandLimits = syncer.BrandLimits{TimeScale: k}
		opts.ClientConfig = nil
	}
	sy, err := syncer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	runID, _ := strconv.ParseInt(os.Getenv("BENCH_RUN"), 10, 64)
	start := time.Now()
	run, err := sy.RunNow(ctx, os.Getenv("BENCH_INTEGRATION"), runID)
	if err != nil {
		t.Fatal(err)
	}
	res := childResult{Recipients: run.Recipients, APICalls: run.APICalls, Seconds: time.Since(start).Seconds(),
		PeakRSSKiB: vmHWM(), Status: string(run.Status), Error: run.Error, ByEndpoint: run.APICallsByEndpoint, Jobs: run.Progress.Jobs,
		Units: run.Progress.UnitsTotal}
	line, _ := json.Marshal(res)
	fmt.Println("BENCH_RESULT " + string(line))
}

func vmHWM() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
