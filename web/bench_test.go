package web

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

const (
	benchUsers      = 20000
	benchRecipients = 100000
	benchConc       = 16
)

// BenchmarkMyActiveSurveys loads 100,000 recipients for 20,000 users and
// measures My active surveys for random users at 16 concurrent requests over
// real HTTP, next to a trivial /livez handler on the same server.
//
//	go test -run '^$' -bench BenchmarkMyActiveSurveys ./web/
func BenchmarkMyActiveSurveys(b *testing.B) {
	s := storetest.New(b)
	loadBenchData(b, s)
	srv, err := New(Options{Store: s, AuthMode: AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("/", srv.Handler())
	ts := httptest.NewServer(mux)
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

	// Sanity check: a user with surveys gets rows.
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	req.Header.Set("X-Forwarded-Email", benchEmail(1))
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `data-testid="survey-row"`) && !strings.Contains(string(page), `data-testid="empty-state"`) {
		b.Fatalf("My active surveys: %d", resp.StatusCode)
	}

	// Warm up: open the pool's connections and prepare statements on each.
	if _, _, failed := runLoad(client, ts.URL+"/", true, 400); failed > 0 {
		b.Fatalf("%d warm-up requests failed", failed)
	}

	b.Run("livez", func(b *testing.B) { loadTest(b, client, ts.URL+"/livez", false) })
	b.Run("my-active-surveys", func(b *testing.B) { loadTest(b, client, ts.URL+"/", true) })
}

func benchEmail(i int) string { return fmt.Sprintf("user%05d@example.com", i) }

// loadTest sends b.N requests from benchConc workers and reports throughput
// and latency percentiles.
func loadTest(b *testing.B, client *http.Client, url string, asUser bool) {
	b.ResetTimer()
	lat, elapsed, failed := runLoad(client, url, asUser, b.N)
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d of %d requests failed", failed, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func runLoad(client *http.Client, url string, asUser bool, n int) (lat []time.Duration, elapsed time.Duration, failed int64) {
	var next, nfailed atomic.Int64
	lat = make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < benchConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest("GET", url, nil)
				if asUser {
					req.Header.Set("X-Forwarded-Email", benchEmail(rand.IntN(benchUsers)))
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						nfailed.Add(1)
					}
				} else {
					nfailed.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), nfailed.Load()
}

func uuidOf(i int) pgtype.UUID {
	var u pgtype.UUID
	raw, _ := hex.DecodeString(fmt.Sprintf("00000000000040008000%012x", i))
	copy(u.Bytes[:], raw)
	u.Valid = true
	return u
}

// loadBenchData creates 4 integrations with 100 surveys each; every survey has
// an invitation and a reminder sent to 125 random users: 100,000 recipient rows.
func loadBenchData(b *testing.B, s *store.Store) {
	b.Helper()
	ctx := context.Background()
	const integrations, surveysPer, perDist = 4, 100, 125
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	exec(b, s, `INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, last_success_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Integration ' || g, 'Group ' || g,
       'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', now()
FROM generate_series(1, $1) g`, integrations)
	exec(b, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'SV_' || i || '_' || n, 'Survey ' || i || '/' || n,
       n % 10 <> 0, $3::timestamptz + (n % 30 + 1) * interval '1 day'
FROM generate_series(1, $1) i, generate_series(1, $2) n`, integrations, surveysPer, now)
	exec(b, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date, link_expiration)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'EMD_' || i || '_' || n || '_' || k, 'SV_' || i || '_' || n,
       CASE k WHEN 0 THEN '' ELSE 'EMD_' || i || '_' || n || '_0' END,
       CASE k WHEN 0 THEN 'Invite' ELSE 'Reminder' END,
       $3::timestamptz - (10 - k) * interval '1 day',
       CASE WHEN n % 7 = 0 THEN NULL ELSE $3::timestamptz + ((n % 20) - 2 + k) * interval '1 day' END
FROM generate_series(1, $1) i, generate_series(1, $2) n, generate_series(0, 1) k`, integrations, surveysPer, now)

	statuses := []string{"Success", "Opened", "SurveyStarted", "SurveyPartiallyFinished", "SurveyFinished"}
	rows := make([][]any, 0, benchRecipients)
	for i := 1; i <= integrations; i++ {
		for n := 1; n <= surveysPer; n++ {
			users := rng.Perm(benchUsers)[:perDist]
			for _, u := range users {
				st := statuses[rng.IntN(len(statuses))]
				for k := 0; k < 2; k++ {
					status := st
					if k == 1 && st != "SurveyFinished" {
						status = "Success"
					}
					rows = append(rows, []any{uuidOf(i), fmt.Sprintf("EMD_%d_%d_%d", i, n, k), fmt.Sprintf("CID_%d", u),
						fmt.Sprintf("SV_%d_%d", i, n), benchEmail(u), status, now.Add(-time.Duration(10-k) * 24 * time.Hour),
						fmt.Sprintf("https://iad1.qualtrics.com/jfe/form/SV_%d_%d?Q_DL=%d", i, n, u)})
				}
			}
		}
	}
	start := time.Now()
	n, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"recipients"},
		[]string{"integration_id", "distribution_id", "contact_id", "survey_id", "email", "status", "sent_at", "respond_link"},
		pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
	if n != benchRecipients {
		b.Fatalf("copied %d recipients, want %d", n, benchRecipients)
	}
	exec(b, s, `ANALYZE`)
	b.Logf("loaded %d recipients for %d users in %s", n, benchUsers, time.Since(start).Round(time.Millisecond))
}
