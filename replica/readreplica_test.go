package replica

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/microapps/microapps/internal/pgcluster"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/store"
)

// standbyBinariesOrSkip returns the PostgreSQL server binaries, pg_basebackup
// among them; without them the test is skipped, except under CI, where they
// are installed.
func standbyBinariesOrSkip(t *testing.T) pgcluster.Binaries {
	t.Helper()
	b, err := pgcluster.FindBinaries()
	if err == nil {
		_, err = b.Tool("pg_basebackup")
	}
	if (errors.Is(err, pgcluster.ErrNoBinaries) || errors.Is(err, pgcluster.ErrNoTool)) && os.Getenv("CI") != "true" {
		t.Skipf("%v: install PostgreSQL's server package to run this test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPagesReadFromAStreamingStandby starts a throwaway primary and a real
// streaming standby of it (pg_basebackup -R), and a replica of the service
// with MICROAPPS_DATABASE_READ_URL on the standby. With the standby's replay
// paused, its data visibly differs from the primary's, so each page shows
// where it was read: the feed is the standby's; after the user marks it
// read, the redirect and the pages after it are the primary's
// (read-your-writes) while other readers still get the standby's; a router
// with a tight lag bound sends everyone to the primary; once replay resumes
// the standby serves again; and when it stops, the pages and /readyz carry
// on from the primary with one warning logged.
func TestPagesReadFromAStreamingStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers: skipped under -short")
	}
	t.Parallel()
	bin := standbyBinariesOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()

	primary, err := pgcluster.New(ctx, pgcluster.Options{Binaries: bin, Settings: []string{"fsync=off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Remove() })
	dbURL, err := primary.CreateDatabase(ctx, "microapps")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	standby, err := primary.NewStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Remove() })
	t.Logf("primary migrated and standby up in %v", time.Since(began).Round(time.Millisecond))
	// The cluster trusts loopback, so the password is ignored; it is there to
	// show it never reaches a log.
	const password = "replica-pw-never-logged"
	readURL := strings.Replace(standby.URL("microapps"), "postgres@", "postgres:"+password+"@", 1)

	pconn := connect(t, ctx, dbURL)
	sconn := connect(t, ctx, standby.URL("microapps"))
	sql := func(conn *pgx.Conn, q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const integ = "00000000-0000-4000-8000-0000000000aa"
	sql(pconn, `INSERT INTO integrations (id, name, functional_group, base_url, icon, secret_sealed, secret_key_id,
	    status, last_success_at, full_sync_every, deep_links, brand_base_url)
	  VALUES ($1, 'Sales EMEA', 'Sales', 'https://iad1.qualtrics.com/API/v3/', 'chart', '\x00', 'k1', 'active', now(), '1 hour', '{}', '')`, integ)
	notify := func(key string) {
		t.Helper()
		sql(pconn, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, data, created_at, expires_at)
		  VALUES ($1, 'new_survey', $2, 'alice@example.com', 'SV_1', 'EMD_'||$2,
		    jsonb_build_object('surveyName', 'Survey '||$2, 'functionalGroup', 'Sales'), now(), now() + interval '2 days')`, integ, key)
	}
	notify("one")

	core, logs := observer.New(zapcore.InfoLevel)
	newReplica := func(maxLag time.Duration) *Replica {
		t.Helper()
		a, err := New(ctx, Options{
			DatabaseURL:     dbURL,
			ReadDatabaseURL: readURL,
			ReadMaxLag:      maxLag,
			Keyring:         testKeyring(t),
			AuthMode:        "header",
			AuthHeader:      "X-Forwarded-Email",
			TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
			PublicURL:       &url.URL{Scheme: "http", Host: "localhost:8080"},
		}, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}
	// A lag bound of a minute keeps the paused standby in use below.
	a := newReplica(time.Minute)
	srv := httptest.NewServer(a.Routes())
	defer srv.Close()

	// Wait until the standby has replayed everything so far.
	waitFor(t, ctx, "the standby to catch up", func() bool {
		pos, err := a.Store().WALPosition(ctx)
		a.Reads().Check(ctx)
		st := a.Reads().Status()
		return err == nil && st.OK && st.Replayed >= pos
	})

	type page struct {
		code   int
		items  int // notifications listed
		unread int
		cookie *http.Cookie
	}
	doAt := func(base, method, path string, cookie *http.Cookie) page {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("id=all")
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, body)
		req.Header.Set("X-Forwarded-Email", "alice@example.com")
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		p := page{code: resp.StatusCode, items: strings.Count(string(b), `data-testid="notification"`),
			unread: strings.Count(string(b), `data-unread="true"`)}
		if strings.HasPrefix(path, "/api/") {
			p.items, p.unread = strings.Count(string(b), `"kind":`), strings.Count(string(b), `"read":false`)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "microapps_wrote" {
				p.cookie = c
			}
		}
		return p
	}
	do := func(method, path string, cookie *http.Cookie) page {
		t.Helper()
		return doAt(srv.URL, method, path, cookie)
	}
	reads := func(target string) float64 {
		t.Helper()
		v, _ := value(scrape(t, srv.URL+"/metrics"), "microapps_page_reads_total", map[string]string{"target": target})
		return v
	}

	// 1. Caught up: the page comes from the standby, whose sessions show it.
	if p := do(http.MethodGet, "/notifications", nil); p.code != http.StatusOK || p.items != 1 || p.unread != 1 {
		t.Fatalf("feed: %+v, want 1 unread", p)
	}
	var standbySessions int
	if err := sconn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'microapps-read'`).Scan(&standbySessions); err != nil || standbySessions == 0 {
		t.Fatalf("the standby has %d sessions of the read pool (%v)", standbySessions, err)
	}
	if got := reads(store.ReadReplica); got < 1 {
		t.Errorf("page_reads_total{target=replica} = %v after a page from the standby", got)
	}

	// 2. Replay paused, a sync adds a notification on the primary: the page
	// still shows the standby's one.
	sql(sconn, `SELECT pg_wal_replay_pause()`)
	notify("two")
	if p := do(http.MethodGet, "/notifications", nil); p.items != 1 || p.unread != 1 {
		t.Fatalf("feed with replay paused: %+v, want the standby's single unread notification", p)
	}
	if p := do(http.MethodGet, "/api/v1/me/notifications", nil); p.code != http.StatusOK || p.items != 1 {
		t.Fatalf("/api/v1/me/notifications with replay paused: %+v, want the standby's one", p)
	}

	// 3. Read-your-writes: marking all read leaves the write's position in a
	// cookie; the redirect's page, with it, is the primary's.
	marked := do(http.MethodPost, "/notifications/read", nil)
	if marked.code != http.StatusSeeOther || marked.cookie == nil {
		t.Fatalf("mark read: %+v, want 303 with the write cookie", marked)
	}
	primaryBefore := reads(store.ReadPrimary)
	if p := do(http.MethodGet, "/notifications", marked.cookie); p.items != 2 || p.unread != 0 {
		t.Fatalf("feed after the user's write: %+v, want the primary's two, read", p)
	}
	if p := do(http.MethodGet, "/api/v1/me/notifications", marked.cookie); p.items != 2 || p.unread != 0 {
		t.Fatalf("/api/v1/me after the user's write: %+v, want the primary's", p)
	}
	if got := reads(store.ReadPrimary); got < primaryBefore+2 {
		t.Errorf("page_reads_total{target=primary} went from %v to %v, want +2", primaryBefore, got)
	}
	// Another reader (no cookie) still gets the standby, a minute behind at most.
	if p := do(http.MethodGet, "/notifications", nil); p.items != 1 || p.unread != 1 {
		t.Fatalf("feed without the cookie: %+v, want the standby's", p)
	}

	// 4. A router that tolerates 300 ms of lag does not read a standby whose
	// replay stopped before the last write.
	tight := newReplica(300 * time.Millisecond)
	tightSrv := httptest.NewServer(tight.Routes())
	defer tightSrv.Close()
	time.Sleep(400 * time.Millisecond)
	tight.Reads().Check(ctx)
	if tight.Reads().UseStandby(0) {
		t.Fatalf("a standby paused behind a write is used within a 300 ms bound: %+v", tight.Reads().Status())
	}
	if p := doAt(tightSrv.URL, http.MethodGet, "/notifications", nil); p.items != 2 {
		t.Fatalf("feed from the tightly bound replica: %+v, want the primary's two", p)
	}
	tightSrv.Close()
	tight.Close()

	// 5. Replay resumes: the standby catches up and serves everyone again.
	sql(sconn, `SELECT pg_wal_replay_resume()`)
	waitFor(t, ctx, "the standby to replay the write", func() bool {
		pos, err := a.Store().WALPosition(ctx)
		a.Reads().Check(ctx)
		return err == nil && a.Reads().Status().Replayed >= pos
	})
	replicaBefore := reads(store.ReadReplica)
	if p := do(http.MethodGet, "/notifications", marked.cookie); p.items != 2 || p.unread != 0 {
		t.Fatalf("feed once replayed: %+v", p)
	}
	if got := reads(store.ReadReplica); got != replicaBefore+1 {
		t.Errorf("once the write is replayed, the cookie's page was not read from the standby (%v -> %v)", replicaBefore, got)
	}

	// 6. The standby stops: pages carry on from the primary, readiness
	// stays green, and the warning is logged once.
	warningsBefore := logs.FilterMessageSnippet("read from the primary").Len()
	sconn.Close(ctx)
	if err := standby.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if p := do(http.MethodGet, "/notifications", nil); p.code != http.StatusOK || p.items != 2 {
			t.Fatalf("feed with the standby down: %+v", p)
		}
	}
	if p := do(http.MethodGet, "/api/v1/me/surveys", nil); p.code != http.StatusOK {
		t.Fatalf("/api/v1/me/surveys with the standby down: %+v", p)
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz with the read replica down: %d, want 200", resp.StatusCode)
	}
	a.Reads().Check(ctx)
	a.Reads().Check(ctx)
	if st := a.Reads().Status(); st.OK {
		t.Errorf("status with the standby stopped: %+v", st)
	}
	if up, _ := value(scrape(t, srv.URL+"/metrics"), "microapps_read_replica_up", nil); up != 0 {
		t.Errorf("read_replica_up = %v with the standby stopped", up)
	}
	aWarnings := 0
	for _, e := range logs.FilterMessageSnippet("read from the primary").All()[warningsBefore:] {
		if e.Level == zapcore.WarnLevel {
			aWarnings++
		}
	}
	if aWarnings != 1 {
		t.Errorf("%d warnings since the standby stopped, want one:\n%v", aWarnings, logs.All()[warningsBefore:])
	}
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
		}
		if strings.Contains(line, password) {
			t.Errorf("a log line holds the read URL's password: %s", line)
		}
	}
	t.Logf("whole test: %v", time.Since(began).Round(time.Millisecond))
}

func connect(t *testing.T, ctx context.Context, u string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
