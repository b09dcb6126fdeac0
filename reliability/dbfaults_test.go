package reliability

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// terminateBackends ends every session of database dbName on the shared
// server except the caller's, and returns how many it ended. Only that
// database's sessions are touched.
func terminateBackends(t testing.TB, dbName string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, storetest.AdminURL())
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()) x`, dbName).Scan(&n)
	if err != nil {
		t.Error(err)
	}
	return n
}

func dbNameOf(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// notificationCounts is the number of notifications and of distinct dedupe
// keys, by kind.
func notificationCounts(t testing.TB, st *store.Store) (total, distinct int, byKind map[string]int) {
	t.Helper()
	ctx := context.Background()
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT dedupe_key) FROM notifications`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Pool().Query(ctx, `SELECT kind, count(*) FROM notifications GROUP BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	byKind = map[string]int{}
	for rows.Next() {
		var k string
		var n int
		_ = rows.Scan(&k, &n)
		byKind[k] = n
	}
	return total, distinct, byKind
}

// TestTerminatedConnectionsMidSync kills the service's PostgreSQL sessions
// (pg_terminate_backend, this test's database only) three times while an
// incremental sync that raises notifications works through River. The
// replica is not restarted: later runs complete, the data equals the
// simulator's, and each expected notification exists exactly once.
func TestTerminatedConnectionsMidSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newSim(t, simOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 6, Recipients: 300}})
	dbURL := storetest.NewMigrated(t)
	dbName := dbNameOf(t, dbURL)
	st, err := store.Open(ctx, dbURL, store.Options{AppName: "microapps"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	kr, _ := newKeyring(t)
	var calls atomic.Int64
	var killAt atomic.Int64
	killed := make(chan int, 8)
	s := newStack(t, st, kr, stackOptions{workers: 2, clientConfig: func(c *qualtrics.Config) {
		fastClient(c)
		observe := c.Observe
		c.Observe = func(ev qualtrics.RequestEvent) {
			if observe != nil {
				observe(ev)
			}
			if n := calls.Add(1); n == killAt.Load() {
				killed <- terminateBackends(t, dbName)
			}
		}
	}})
	in := createIntegration(t, st, kr, q, true)
	first := waitRun(t, st, in.ID, s.trigger(t, in.ID, microapps.SyncFull).ID, time.Minute)
	mustSucceed(t, first)

	// New invitations for six people: the next sync raises one new_survey each.
	const invited = 6
	for i := range invited {
		addInvitation(t, q, fmt.Sprintf("person%d@example.com", i), fmt.Sprintf("Pulse %d", i))
	}
	q.sim.SetFaults(qualtricssim.Faults{Latency: 5 * time.Millisecond})
	var ended int
	var runs []store.SyncRun
	// Each run is killed a few calls in: an incremental that follows a
	// half-written one has less left to read, so the points are early.
	for _, step := range []struct {
		at   int64
		kind microapps.SyncKind
	}{{3, microapps.SyncIncremental}, {6, microapps.SyncIncremental}, {4, microapps.SyncFull}} {
		at := step.at
		calls.Store(0)
		killAt.Store(at)
		run := s.trigger(t, in.ID, step.kind)
		select {
		case n := <-killed:
			ended += n
		case <-time.After(30 * time.Second):
			t.Fatalf("the sync never reached call %d", at)
		}
		runs = append(runs, waitRun(t, st, in.ID, run.ID, time.Minute))
	}
	killAt.Store(0)
	q.sim.SetFaults(qualtricssim.Faults{})
	for i, r := range runs {
		t.Logf("run under termination %d: %s %q", i+1, r.Status, r.Error)
	}
	if ended == 0 {
		t.Fatal("no session was terminated: the test proves nothing")
	}
	t.Logf("%d sessions terminated", ended)

	start := time.Now()
	final := waitRun(t, st, in.ID, s.trigger(t, in.ID, microapps.SyncFull).ID, time.Minute)
	mustSucceed(t, final)
	t.Logf("the next full sync after the terminations succeeded in %v", time.Since(start).Round(time.Millisecond))
	checkMatchesSim(t, st, in.ID, q)

	total, distinct, byKind := notificationCounts(t, st)
	if total != distinct {
		t.Errorf("%d notifications but %d dedupe keys", total, distinct)
	}
	if byKind["new_survey"] != invited {
		t.Errorf("%d new_survey notifications, want %d (one per invitation): %v", byKind["new_survey"], invited, byKind)
	}
	t.Run("another sync changes nothing: no notification doubled", func(t *testing.T) {
		mustSucceed(t, waitRun(t, st, in.ID, s.trigger(t, in.ID, microapps.SyncIncremental).ID, time.Minute))
		again, _, kinds := notificationCounts(t, st)
		if again != total || kinds["new_survey"] != invited {
			t.Errorf("%d notifications after another sync, %d before (%v)", again, total, kinds)
		}
	})
	t.Run("no run is left running and the pages answer", func(t *testing.T) {
		var open int
		_ = st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')`).Scan(&open)
		if open != 0 {
			t.Errorf("%d runs still queued or running", open)
		}
		req, _ := http.NewRequest("GET", s.srv.URL+"/", nil)
		req.Header.Set("X-Forwarded-Email", "person0@example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / after the terminations: %v %v", resp, err)
		}
		resp.Body.Close()
	})
}

// TestPostgresRestartDuringASync runs `microapps serve` (the real binary) on
// a throwaway cluster, restarts PostgreSQL while a full sync works, and
// measures what /readyz reports: 503 while the database is down, 200 again
// after it is back, without restarting the service. A later run completes
// and the data equals the simulator's.
func TestPostgresRestartDuringASync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster: skipped under -short")
	}
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	dbURL := c.url("microapps")
	if err := migrations.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	q := newSim(t, simOptions{seed: 31, spec: qualtricssim.Spec{Surveys: 8, Recipients: 600}})
	_, rawKeys := newKeyring(t)
	p := startServe(t, serveEnv(dbURL, rawKeys, 2))
	p.waitReady(30 * time.Second)
	in := createThroughAPI(t, p.base, map[string]any{"name": "Sales", "baseUrl": q.baseURL(), "token": q.token})

	// Slow Qualtrics so the run is still working when the database goes away.
	q.sim.SetFaults(qualtricssim.Faults{Latency: 40 * time.Millisecond})
	r := call(t, nil, "POST", p.base+"/api/v1/integrations/"+in.ID+"/syncs", map[string]string{"kind": "full"}, adminToken)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST sync: %d %s", r.status, r.body)
	}
	firstRun := decode[syncRunResource](t, r)
	time.Sleep(time.Second)
	ready := func() int {
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(p.base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz before the restart: %d", got)
	}
	stopAt := time.Now()
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(stopAt)
	seen503 := time.Duration(-1)
	for d := time.Now().Add(10 * time.Second); time.Now().Before(d); time.Sleep(50 * time.Millisecond) {
		if ready() == http.StatusServiceUnavailable {
			seen503 = time.Since(stopAt)
			break
		}
	}
	if seen503 < 0 {
		t.Fatal("/readyz never reported the outage")
	}
	time.Sleep(2 * time.Second) // an outage of a few seconds
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d", got)
	}
	outage := time.Since(stopAt)
	startAt := time.Now()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	started := time.Since(startAt)
	recovered := time.Duration(-1)
	for d := time.Now().Add(60 * time.Second); time.Now().Before(d); time.Sleep(50 * time.Millisecond) {
		if ready() == http.StatusOK {
			recovered = time.Since(startAt)
			break
		}
	}
	if recovered < 0 {
		t.Fatalf("/readyz not 200 within 60 s of PostgreSQL's start\n%s", tail(p.logs(), 3000))
	}
	t.Logf("pg_ctl stop took %v; /readyz 503 %v after the stop; outage %v; pg_ctl start took %v; /readyz 200 %v after the start",
		stopped.Round(time.Millisecond), seen503.Round(time.Millisecond), outage.Round(time.Millisecond),
		started.Round(time.Millisecond), recovered.Round(time.Millisecond))

	// The interrupted run ends (failed, or finished by River's retry of its
	// job); then a later run completes.
	q.sim.SetFaults(qualtricssim.Faults{})
	recoverStart := time.Now()
	var interrupted syncRunResource
	for d := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := call(t, nil, "GET", fmt.Sprintf("%s/api/v1/integrations/%s/syncs/%d", p.base, in.ID, firstRun.ID), nil, adminToken)
		if r.status == http.StatusOK {
			interrupted = decode[syncRunResource](t, r)
			if interrupted.Status == "succeeded" || interrupted.Status == "failed" {
				break
			}
		}
		if time.Now().After(d) {
			t.Fatalf("the interrupted run is still %q after 90 s\n%s", interrupted.Status, tail(p.logs(), 3000))
		}
	}
	t.Logf("the run under the restart ended %s (%q) %v after recovery", interrupted.Status, interrupted.Error, time.Since(recoverStart).Round(time.Millisecond))
	run, _ := syncThroughAPI(t, p.base, in.ID, "full", 2*time.Minute)
	if run.Status != "succeeded" {
		t.Fatalf("the next run: %s %q", run.Status, run.Error)
	}
	t.Logf("a later full run succeeded %v after recovery", time.Since(recoverStart).Round(time.Millisecond))
	st, err := store.Open(ctx, dbURL, store.Options{AppName: "reliability-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkMatchesSim(t, st, in.ID, q)
	var open int
	_ = st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')`).Scan(&open)
	if open != 0 {
		t.Errorf("%d runs left queued or running", open)
	}
}
