// Command scale is the scale benchmark. It bulk-loads recipients across
// integrations through the store's own write path (never raw SQL, never a
// hand-run ANALYZE), then measures each notification rule, each page's
// p50/p99 at 16 concurrent users alone and while a 100,000-recipient first
// full sync writes, the purge's rows/s, the deletion of the large
// integration, the database's size per million recipients, and which indexes
// the run used. The 16 users without think time are the saturation figure:
// the queue of a busy machine, not a page.
//
// With -rate it also sends the load people make: an open loop of
// Poisson arrivals at each rate, the pages mixed as they are used (see mix),
// each request on its own and timed from when it was due, alone and while a
// 100,000-recipient brand's first full sync runs through serve's syncer
// against the Qualtrics simulator at Qualtrics' limits, with /readyz at the
// same rate as the machine's floor.
//
// It talks only to the local PostgreSQL and to its own in-process loopback
// HTTP servers (the replica and the simulator).
//
//	go run ./bench/scale -recipients 10000000 -integrations 1000
//	go run ./bench/scale -recipients 1000000 -integrations 100 -keep   # keep the database
//	go run ./bench/scale -reuse                                         # measure a kept one again
//	go run ./bench/scale -reuse -only rate -rate 50,100,200,400         # the open loop
package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type bench struct {
	ctx     context.Context
	st      *store.Store
	spec    storetest.ScaleSpec
	now     time.Time
	out     io.Writer
	samples []sample // recipients to ask pages about
}

type sample struct {
	integration, survey, distribution, email string
}

func run() error {
	var (
		admin        = flag.String("admin", storetest.AdminURL(), "maintenance database URL")
		dbName       = flag.String("db", "microapps_scale", "database to create (dropped first) or reuse")
		recipients   = flag.Int("recipients", 1_000_000, "recipient rows to load")
		integrations = flag.Int("integrations", 100, "integrations (brands); the first holds -large of the rows")
		large        = flag.Float64("large", 0.1, "share of the rows in integration 0")
		workers      = flag.Int("workers", 3, "integrations loaded at once")
		perSurvey    = flag.Int("per-survey", 1000, "recipients of each survey's invitation (and of its reminder)")
		requests     = flag.Int("requests", 2000, "requests per page and phase")
		rounds       = flag.Int("rounds", 3, "rounds of every page per phase (the table gives the median round and the range of p99)")
		reuse        = flag.Bool("reuse", false, "measure a database loaded by an earlier run")
		keep         = flag.Bool("keep", false, "keep the database afterwards")
		skipDelete   = flag.Bool("skip-delete", false, "do not delete the large integration at the end")
		cpuProfile   = flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and load alike) to this file")
		pageFilter   = flag.String("page", "", "measure only the pages whose name contains this")
		only         = flag.String("only", "", "comma-separated phases to run (sizes,rules,pages,rate,purge,delete,indexes); empty runs all")
		rateList     = flag.String("rate", "", "open-loop rates in requests/s, comma-separated (e.g. 50,100,200,400): measure the mixed pages at each (phase rate)")
		rateDur      = flag.Duration("rate-duration", 15*time.Second, "length of each open-loop run")
		rateMax      = flag.Int("rate-max", 20000, "requests of each open-loop run at most")
		rateReps     = flag.Int("rate-reps", 3, "repetitions of every rate per phase (the table gives medians)")
		rateNoSync   = flag.Bool("rate-nosync", false, "measure the open loop alone only, without the syncing brand")
		rateSlowest  = flag.Int("rate-slowest", 0, "log this many of each open-loop run's slowest requests (page, user) to stderr")
		syncRecips   = flag.Int("sync-recipients", 100_000, "recipients of the brand synced while the open loop runs")
		syncSurveys  = flag.Int("sync-surveys", 40, "surveys of that brand")
	)
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	u, err := url.Parse(*admin)
	if err != nil {
		return err
	}
	dbURL := *u
	dbURL.Path = "/" + *dbName
	b := &bench{ctx: ctx, out: os.Stdout, now: time.Now().UTC().Truncate(time.Second),
		spec: storetest.ScaleSpec{Recipients: *recipients, Integrations: *integrations, LargeShare: *large,
			PerUser: 20, PerSurvey: *perSurvey, NotifiedShare: 0.3, Workers: *workers, Seed: 16}}

	if !*reuse {
		conn, err := pgx.Connect(ctx, *admin)
		if err != nil {
			return err
		}
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{*dbName}.Sanitize()+` WITH (FORCE)`)
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{*dbName}.Sanitize()); err != nil {
			return err
		}
		conn.Close(ctx)
		if err := migrations.Up(ctx, dbURL.String()); err != nil {
			return err
		}
	}
	b.st, err = store.Open(ctx, dbURL.String(), store.Options{MaxConns: 40, AppName: "scale-bench"})
	if err != nil {
		return err
	}
	defer b.st.Close()
	if !*keep && !*reuse {
		defer func() {
			b.st.Close()
			if conn, err := pgx.Connect(ctx, *admin); err == nil {
				_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{*dbName}.Sanitize()+` WITH (FORCE)`)
				conn.Close(ctx)
			}
		}()
	}
	if *reuse {
		fmt.Fprintf(b.out, "# scale benchmark on %s as an earlier run loaded it\n\n", *dbName)
	} else {
		fmt.Fprintf(b.out, "# scale benchmark: %d recipients, %d integrations (integration 0: %d), %d users\n\n",
			b.spec.Recipients, b.spec.Integrations, b.spec.RowsOf(0), b.spec.Users())
	}
	if !*reuse {
		if err := b.load(); err != nil {
			return err
		}
	} else if err := b.st.Pool().QueryRow(ctx, `SELECT max(last_sync_at) FROM integrations`).Scan(&b.now); err != nil {
		return err
	}
	phases := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			phases[p] = true
		}
	}
	want := func(p string) bool { return len(phases) == 0 || phases[p] }
	rates, err := parseRates(*rateList)
	if err != nil {
		return err
	}
	if err := b.pickSamples(); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		run  func() error
	}{
		{"sizes", b.sizes},
		{"rules", b.rules},
		{"pages", func() error { return b.pages(*requests, *rounds, *pageFilter) }},
		{"rate", func() error {
			if len(rates) == 0 {
				return nil
			}
			return b.rate(rateOptions{rates: rates, dur: *rateDur, limit: *rateMax, reps: max(1, *rateReps), noSync: *rateNoSync, slowest: *rateSlowest,
				sync: syncOptions{recipients: *syncRecips, surveys: *syncSurveys}})
		}},
		{"purge", b.purge},
		{"delete", func() error {
			if *skipDelete {
				return nil
			}
			return b.deleteLarge()
		}},
		{"indexes", b.indexUse},
	} {
		if !want(p.name) {
			continue
		}
		if err := p.run(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

func (b *bench) load() error {
	start := time.Now()
	last := time.Now()
	b.spec.Progress = func(done, total int, rows int64) {
		if time.Since(last) > 15*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "loaded %d/%d integrations, %d rows, %.0f rows/s\n", done, total, rows, float64(rows)/time.Since(start).Seconds())
		}
	}
	if err := storetest.LoadScale(b.ctx, b.st, b.spec, b.now); err != nil {
		return err
	}
	took := time.Since(start)
	var rows int64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM recipients`).Scan(&rows); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "load through the store's write path: %d recipients in %s (%.0f rows/s)\n\n", rows, took.Round(time.Second), float64(rows)/took.Seconds())
	return nil
}

func (b *bench) sizes() error {
	fmt.Fprintln(b.out, "| table | rows | table+indexes | per million recipients |")
	fmt.Fprintln(b.out, "|---|---:|---:|---:|")
	var recipients float64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM recipients`).Scan(&recipients); err != nil {
		return err
	}
	for _, t := range []string{"recipients", "distributions", "distribution_stats", "surveys", "notifications", "deliveries"} {
		var n, size int64
		if err := b.st.Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM `+t+`), pg_total_relation_size($1::regclass)`, t).Scan(&n, &size); err != nil {
			return err
		}
		fmt.Fprintf(b.out, "| %s | %d | %s | %s |\n", t, n, mib(size), mib(int64(float64(size)/recipients*1e6)))
	}
	var db int64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT pg_database_size(current_database())`).Scan(&db); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "| database | | %s | %s |\n\n", mib(db), mib(int64(float64(db)/recipients*1e6)))
	// pageinspect reads the btrees' depth (this scratch database only).
	_, _ = b.st.Pool().Exec(b.ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`)
	rows, err := b.st.Pool().Query(b.ctx, `SELECT c.relname, pg_relation_size(c.oid), (bt_metap(c.relname::text)).level
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'recipients'::regclass ORDER BY 1`)
	if err == nil {
		fmt.Fprintln(b.out, "| recipients index | size | btree depth (levels above leaves) |")
		fmt.Fprintln(b.out, "|---|---:|---:|")
		for rows.Next() {
			var name string
			var size int64
			var level int
			if err := rows.Scan(&name, &size, &level); err != nil {
				break
			}
			fmt.Fprintf(b.out, "| %s | %s | %d |\n", name, mib(size), level)
		}
		rows.Close()
		fmt.Fprintln(b.out)
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (b *bench) pickSamples() error {
	rng := rand.New(rand.NewPCG(7, 7))
	users := b.spec.Users()
	for len(b.samples) < 500 {
		email := storetest.ScaleEmail(rng.IntN(users))
		var s sample
		// By recipients_email_idx (its predicate stated), as My active surveys reads.
		err := b.st.Pool().QueryRow(b.ctx, `SELECT integration_id::text, survey_id, distribution_id, email FROM recipients
			WHERE email = $1 AND deleted_at IS NULL AND status NOT IN ('SurveyFinished', 'SurveyScreenedOut') LIMIT 1`, email).
			Scan(&s.integration, &s.survey, &s.distribution, &s.email)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return err
		}
		b.samples = append(b.samples, s)
	}
	return nil
}

// rules times each notification rule over every integration, as the
// periodic check runs them: the first check after the load (the whole 24 h
// window is new to it: a backlog no running service has) and then five
// checks five minutes apart, as the periodic job runs them (each finds what
// entered the window since the last).
func (b *bench) rules() error {
	fmt.Fprintln(b.out, "| rule | first check (whole window new) | next checks, 5 min apart (median of 5) | raised first / next |")
	fmt.Fprintln(b.out, "|---|---:|---:|---:|")
	o := store.RaiseOptions{Now: b.now.Add(time.Minute), Window: 24 * time.Hour, FeedLifetime: 48 * time.Hour, Email: true, Webhook: true}
	type rule struct {
		name string
		fn   func(tx pgx.Tx) (store.Raised, error)
	}
	// new_survey for one page of a sync: 1,000 changed recipients.
	var refs []store.RecipientRef
	rows, err := b.st.Pool().Query(b.ctx, `SELECT distribution_id, contact_id FROM recipients WHERE integration_id = $1 LIMIT 1000`,
		storetest.ScaleIntegrationID(1))
	if err != nil {
		return err
	}
	for rows.Next() {
		var r store.RecipientRef
		if err := rows.Scan(&r.DistributionID, &r.ContactID); err != nil {
			return err
		}
		refs = append(refs, r)
	}
	rows.Close()
	for _, r := range []rule{
		{"survey_expiring (all integrations)", func(tx pgx.Tx) (store.Raised, error) { return b.st.RaiseSurveyExpiringTx(b.ctx, tx, o) }},
		{"survey_statistics (all integrations)", func(tx pgx.Tx) (store.Raised, error) { return b.st.RaiseSurveyStatisticsTx(b.ctx, tx, o) }},
		{"survey_expiring (one integration, after its sync)", func(tx pgx.Tx) (store.Raised, error) {
			oo := o
			oo.IntegrationID = storetest.ScaleIntegrationID(0)
			return b.st.RaiseSurveyExpiringTx(b.ctx, tx, oo)
		}},
		{"new_survey (1,000 changed recipients)", func(tx pgx.Tx) (store.Raised, error) {
			oo := o
			oo.IntegrationID = storetest.ScaleIntegrationID(1)
			return b.st.RaiseNewSurveyTx(b.ctx, tx, oo, refs)
		}},
	} {
		var times []time.Duration
		first, later := 0, 0
		for i := range 6 {
			o.Now = b.now.Add(time.Minute + time.Duration(i)*5*time.Minute)
			start := time.Now()
			var raised store.Raised
			err := b.st.WithTx(b.ctx, func(tx pgx.Tx) error {
				var err error
				raised, err = r.fn(tx)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			times = append(times, time.Since(start))
			if i == 0 {
				first = raised.Count
			} else {
				later += raised.Count
			}
		}
		next := slices.Clone(times[1:])
		slices.Sort(next)
		fmt.Fprintf(b.out, "| %s | %s | %s | %d / %d |\n", r.name, ms(times[0]), ms(next[len(next)/2]), first, later/5)
	}
	fmt.Fprintln(b.out)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// page is one page of the product and how to ask for it.
type page struct {
	name string
	req  func() (path, user string)
}

// server is a replica (no River workers) behind an in-process loopback
// HTTP server, a client for it and the pages to ask it for.
type server struct {
	base    string
	client  *http.Client
	pages   []page
	replica *replica.Replica // its syncer is the one serve runs (notifier, after-sync work)
	keyring *seal.Keyring
	close   func()
}

func (b *bench) server() (*server, error) {
	key := "k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	kr, err := seal.ParseKeyring(key)
	if err != nil {
		return nil, err
	}
	a, err := replica.New(b.ctx, replica.Options{Store: b.st, HTTPAddr: "127.0.0.1:0", PublicURL: &url.URL{Scheme: "http", Host: "127.0.0.1"},
		Keyring: kr, AuthMode: "header", AuthHeader: "X-Forwarded-Email", QualtricsAllowedHosts: []string{"127.0.0.1"},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Workers: 0}, zap.NewNop())
	if err != nil {
		return nil, err
	}
	ts := httptest.NewServer(a.Routes())
	// The open loop opens as many connections as requests are in flight;
	// keep them for the next ones, as a browser keeps its own.
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}, Timeout: 30 * time.Second}
	return &server{base: ts.URL, client: client, pages: b.pageList(), replica: a, keyring: kr,
		close: func() { ts.Close(); a.Close() }}, nil
}

// pageList is every page the benchmark asks for, /readyz (the floor) first.
func (b *bench) pageList() []page {
	rng := rand.New(rand.NewPCG(3, 3))
	var mu sync.Mutex
	pick := func() sample {
		mu.Lock()
		defer mu.Unlock()
		return b.samples[rng.IntN(len(b.samples))]
	}
	adminOf := func(s sample) string {
		var i int
		fmt.Sscanf(s.integration[24:], "%x", &i)
		return storetest.ScaleAdmin(i - 1)
	}
	return []page{
		{floorPage, func() (string, string) { return "/readyz", "" }},
		{"My active surveys", func() (string, string) { s := pick(); return "/", s.email }},
		{"Notifications", func() (string, string) { s := pick(); return "/notifications", s.email }},
		{"Survey details", func() (string, string) {
			s := pick()
			return "/surveys/" + s.integration + "/" + s.distribution, s.email
		}},
		{"Open surveys", func() (string, string) { s := pick(); return "/admin/surveys", adminOf(s) }},
		{"Survey results (recipients page)", func() (string, string) {
			s := pick()
			return "/admin/surveys/" + s.integration + "/" + s.survey + "?distribution=" + url.QueryEscape(s.distribution), adminOf(s)
		}},
		{"Survey results (a later page)", func() (string, string) {
			s := pick()
			return "/admin/surveys/" + s.integration + "/" + s.survey + "?distribution=" + url.QueryEscape(s.distribution) +
				"&after=" + url.QueryEscape(s.email+"\nCID_"), adminOf(s)
		}},
		{"Distribution data", func() (string, string) {
			s := pick()
			return "/admin/distributions/" + s.integration + "/" + s.distribution, adminOf(s)
		}},
	}
}

const floorPage = "/readyz (floor)"

func (b *bench) pages(requests, rounds int, filter string) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	defer srv.close()
	base, client, pages := srv.base, srv.client, srv.pages
	pages = slices.DeleteFunc(pages, func(p page) bool { return !strings.Contains(p.name, filter) })
	// Each phase runs every page rounds times, the pages taking turns, so a
	// passing disturbance of this shared machine lands on one round of one
	// page, not on a whole page; the median round is reported.
	measure := func(phase string) error {
		type result struct{ p50, p99, rps float64 }
		res := make([][]result, len(pages))
		for range max(1, rounds) {
			for i, p := range pages {
				p50, p99, rps, err := load(client, base, requests, p.req)
				if err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				res[i] = append(res[i], result{p50, p99, rps})
			}
		}
		for i, p := range pages {
			r := res[i]
			slices.SortFunc(r, func(a, b result) int { return cmp.Compare(a.p99, b.p99) })
			m := r[len(r)/2]
			fmt.Fprintf(b.out, "| %s | %s | %.1f ms | %.1f ms | %.1f–%.1f ms | %.0f |\n", p.name, phase, m.p50, m.p99, r[0].p99, r[len(r)-1].p99, m.rps)
		}
		return nil
	}
	// Warm up first: a running service's pool holds connections that have
	// loaded the catalog and prepared its statements (a new backend's first
	// plan takes ~10 ms); the table is of that steady state, not of the
	// first requests after start.
	for _, p := range pages {
		if _, _, _, err := load(client, base, max(200, requests/10), p.req); err != nil {
			return fmt.Errorf("warm-up of %s: %w", p.name, err)
		}
	}
	fmt.Fprintf(b.out, "| page (16 concurrent users, %d requests a round) | while | p50 | p99 (median of %d rounds) | p99 range | req/s |\n", requests, max(1, rounds))
	fmt.Fprintln(b.out, "|---|---|---:|---:|---:|---:|")
	if err := measure("alone"); err != nil {
		return err
	}
	// First full syncs of new 100,000-recipient brands write meanwhile,
	// through the same write path (merge, upserts, analyze), one after the
	// other for as long as the pages are measured.
	sp := b.spec
	sp.Recipients, sp.Integrations, sp.LargeShare, sp.NotifiedShare, sp.Workers, sp.Progress = 100_000, 1, 0, 0, 1, nil
	done := make(chan error, 1)
	syncCtx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var syncs atomic.Int64
	writeStart := time.Now()
	go func() {
		for syncCtx.Err() == nil {
			// A number no loaded brand has.
			var brands int
			_ = b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM integrations`).Scan(&brands)
			if err := storetest.LoadScale(syncCtx, b.st, withOffset(sp, b.spec.Integrations+1+brands), b.now); err != nil && syncCtx.Err() == nil {
				done <- err
				return
			}
			if syncCtx.Err() == nil {
				syncs.Add(1)
			}
		}
		done <- nil
	}()
	time.Sleep(2 * time.Second) // the sync is writing
	if err := measure("a 100k full sync writes"); err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\n(meanwhile %d full syncs of 100k-recipient brands completed and the next one was writing when the pages were done, %s after the first began)\n",
		syncs.Load(), time.Since(writeStart).Round(time.Second))
	fmt.Fprintln(b.out)
	return nil
}

// withOffset loads the brand under integration number off (so it does not
// collide with the loaded ones).
func withOffset(sp storetest.ScaleSpec, off int) storetest.ScaleSpec {
	sp.Seed = uint64(off)
	sp.Offset = off
	return sp
}

func load(client *http.Client, base string, n int, req func() (string, string)) (p50, p99, rps float64, err error) {
	const conc = 16
	var next, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				path, user := req()
				r, _ := http.NewRequest("GET", base+path, nil)
				if user != "" {
					r.Header.Set("X-Forwarded-Email", user)
				}
				t0 := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d", path, resp.StatusCode))
					}
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, 0, 0, fmt.Errorf("%d of %d requests failed, first: %v", f, n, firstErr.Load())
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	return pct(0.50), pct(0.99), float64(n) / elapsed.Seconds(), nil
}

// purge measures the purge of one day of notifications (and their
// deliveries): the oldest day of the 30 loaded, as the purge finds it two
// days later than the load.
func (b *bench) purge() error {
	var before int64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM notifications) + (SELECT count(*) FROM deliveries)`).Scan(&before); err != nil {
		return err
	}
	at := b.now.Add(store.NotificationRetention + 48*time.Hour - 27*24*time.Hour)
	start := time.Now()
	r, err := b.st.Purge(b.ctx, at)
	if err != nil {
		return err
	}
	took := time.Since(start)
	var after int64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM notifications) + (SELECT count(*) FROM deliveries)`).Scan(&after); err != nil {
		return err
	}
	gone := before - after
	fmt.Fprintf(b.out, "purge of the oldest days of notifications: %d notifications and their deliveries (%d rows) in %s: %.0f rows/s; analyzed %v\n\n",
		r.Notifications, gone, took.Round(time.Millisecond), float64(gone)/took.Seconds(), r.Analyzed)
	return nil
}

func (b *bench) deleteLarge() error {
	id := storetest.ScaleIntegrationID(0)
	var n int64
	if err := b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM recipients WHERE integration_id = $1`, id).Scan(&n); err != nil {
		return err
	}
	start := time.Now()
	if _, err := b.st.DeleteIntegration(b.ctx, id, store.AuditEvent{Actor: "scale", Action: "integration.delete"}); err != nil {
		return err
	}
	answered := time.Since(start)
	start = time.Now()
	r, err := b.st.RemoveDeletedIntegration(b.ctx, id)
	if err != nil {
		return err
	}
	removed := time.Since(start)
	fmt.Fprintf(b.out, "delete of integration 0 (%d recipients): the request's work %s; background removal of %d rows in %s (%.0f rows/s); analyzed %v\n\n",
		n, ms(answered), r.Rows, removed.Round(time.Second), float64(r.Rows)/removed.Seconds(), r.Analyzed)
	return nil
}

func (b *bench) indexUse() error {
	rows, err := b.st.Pool().Query(b.ctx, `SELECT relname, indexrelname, idx_scan, pg_relation_size(indexrelid)
		FROM pg_stat_user_indexes WHERE relname IN ('recipients', 'notifications', 'deliveries', 'distributions', 'distribution_stats', 'surveys')
		ORDER BY relname, indexrelname`)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintln(b.out, "| table | index (pg_stat_user_indexes after the run) | scans | size |")
	fmt.Fprintln(b.out, "|---|---|---:|---:|")
	for rows.Next() {
		var t, i string
		var scans, size int64
		if err := rows.Scan(&t, &i, &scans, &size); err != nil {
			return err
		}
		fmt.Fprintf(b.out, "| %s | %s | %d | %s |\n", t, i, scans, mib(size))
	}
	return rows.Err()
}
