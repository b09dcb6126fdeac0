package syncer_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// historyGate answers one distribution's history pages as a test says: it
// records each request's skipToken, fails pages after the first few with a
// 504, or refuses the next skipToken as expired (Qualtrics' 400 GD_2).
type historyGate struct {
	mu        sync.Mutex
	dist      string
	failAfter int // pages answered before every later page fails (0: no failure)
	expireOne bool
	served    int
	tokens    []string // the skipToken of each request, "" for page 1
}

func (g *historyGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/distributions/"+g.dist+"/history") {
			next.ServeHTTP(w, r)
			return
		}
		tok := r.URL.Query().Get("skipToken")
		g.mu.Lock()
		g.tokens = append(g.tokens, tok)
		fail := g.failAfter > 0 && g.served >= g.failAfter
		expire := g.expireOne && tok != ""
		if expire {
			g.expireOne = false
		}
		if !fail && !expire {
			g.served++
		}
		g.mu.Unlock()
		switch {
		case fail:
			w.WriteHeader(http.StatusGatewayTimeout)
			_, _ = w.Write([]byte("<html><body>504 Gateway Time-out</body></html>"))
		case expire:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"Invalid skipToken.","errorCode":"GD_2"}}}`))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (g *historyGate) set(failAfter int, expireOne bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failAfter, g.expireOne, g.served, g.tokens = failAfter, expireOne, 0, nil
}

func (g *historyGate) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.tokens)
}

// Issue 29.2: a large distribution whose read fails part-way keeps the pages
// it read and its cursor: the next run goes on from there instead of page 1;
// a cursor Qualtrics no longer accepts starts the read over; nothing is left
// behind either way.
func TestAFailedLargeDistributionGoesOnWhereItStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	gate := &historyGate{}
	e := newEnv(t, envOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 3, Recipients: 8000}, wrap: gate.wrap,
		syncOpts: func(o *syncer.Options) { o.Now = clock.Now; o.FailureBudget = 0.5 }})
	// The live invitation with the most recipients: it is staged page by page.
	var big qualtricssim.Distribution
	for _, d := range liveInvitations(t, e, 0) {
		if len(e.sim.Recipients(d.ID)) > len(e.sim.Recipients(big.ID)) {
			big = d
		}
	}
	if n := len(e.sim.Recipients(big.ID)); n < 1000 {
		t.Fatalf("the largest live invitation has %d recipients: too few to be staged", n)
	}
	gate.dist = big.ID

	gate.set(8, false) // eight history pages (staged by then), then 504s
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	if run.Progress.UnitsFailed != 1 {
		t.Fatalf("units failed %d, want the one distribution", run.Progress.UnitsFailed)
	}
	var kept, staged int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE resume_run_id = $2),
		(SELECT count(*) FROM sync_stage_history WHERE distribution_id = $3)
		FROM distributions WHERE integration_id = $1`, e.in.ID, run.ID, big.ID).Scan(&kept, &staged); err != nil {
		t.Fatal(err)
	}
	if kept != 1 || staged == 0 {
		t.Fatalf("after the failed read: %d resumes, %d staged history rows; want the read kept", kept, staged)
	}
	firstRead := len(gate.requests())

	t.Run("the next run goes on from the cursor", func(t *testing.T) {
		gate.set(0, false)
		clock.Advance(3 * time.Minute) // past the failure's backoff
		e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
		req := gate.requests()
		if len(req) == 0 {
			t.Fatal("the next run did not read the distribution")
		}
		if req[0] == "" {
			t.Errorf("the next run read the distribution from page 1 (%d requests, %d the first time)", len(req), firstRead)
		}
		if slices.Contains(req, "") {
			t.Errorf("page 1 was read again: %v", req)
		}
		e.checkMatchesSim(ctx)
		assertNothingLeft(t, e)
	})

	t.Run("a cursor Qualtrics refuses starts the read over", func(t *testing.T) {
		gate.set(8, false)
		clock.Advance(2 * time.Hour) // the distribution comes due again
		// One recipient opens: the distribution's figures move, so it is read.
		if _, err := e.sim.SetRecipientStatus(big.ID, e.sim.Recipients(big.ID)[0].ContactID, qualtricssim.StatusOpened, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.sync(ctx, microapps.SyncFull)
		gate.set(0, true)
		clock.Advance(10 * time.Minute)
		e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
		req := gate.requests()
		if len(req) < 2 || req[0] == "" || req[1] != "" {
			t.Errorf("want a refused cursor, then page 1: %v", req)
		}
		e.checkMatchesSim(ctx)
		assertNothingLeft(t, e)
	})
}

func assertNothingLeft(t *testing.T, e *env) {
	t.Helper()
	var left, resumes int
	if err := e.st.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM sync_stage_history) + (SELECT count(*) FROM sync_stage_links),
		(SELECT count(*) FROM distributions WHERE resume_run_id IS NOT NULL)`).Scan(&left, &resumes); err != nil {
		t.Fatal(err)
	}
	if left != 0 || resumes != 0 {
		t.Errorf("%d staged rows and %d resumes left after the read", left, resumes)
	}
}

// A unit whose staged pages no longer match its cursor (pages lost behind
// its back, nobody else on it) stalls and fails after a few tries instead of
// being picked again forever; its pages are not kept, and the next run
// reads the distribution from the first page.
func TestAUnitWhoseStagedPagesWereLostFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{}
	e := newEnv(t, envOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 3, Recipients: 3000},
		syncOpts: func(o *syncer.Options) { o.SliceBudget = time.Nanosecond; o.Now = clock.Now; o.FailureBudget = 0.5 }})
	run := e.queue(microapps.SyncFull)
	lost := ""
	var out store.SyncRun
	for slices := 0; ; slices++ {
		r, done, err := e.sy.WorkSlice(ctx, e.in.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			out = r
			break
		}
		if slices > 2000 {
			t.Fatal("the run never ends: a unit whose pages were lost is picked again forever")
		}
		if lost == "" {
			// One row of a staged distribution disappears.
			_ = e.st.Pool().QueryRow(ctx, `WITH d AS (
					DELETE FROM sync_stage_history WHERE ctid = (SELECT s.ctid FROM sync_stage_history s
						JOIN sync_units u ON u.run_id = s.run_id AND u.distribution_id = s.distribution_id AND u.status = 'pending'
						WHERE s.run_id = $1 LIMIT 1)
					RETURNING distribution_id)
				SELECT distribution_id FROM d`, run.ID).Scan(&lost)
		}
	}
	if lost == "" {
		t.Fatal("no staged distribution to take a row from: the test does not exercise it")
	}
	e.mustSucceed(out)
	if !strings.Contains(strings.Join(out.Warnings, "\n"), "distribution "+lost) {
		t.Errorf("no warning names %s: %v", lost, out.Warnings)
	}
	var kept int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM distributions WHERE resume_run_id IS NOT NULL`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != 0 {
		t.Errorf("%d resumes kept for pages that did not match their cursor", kept)
	}
	clock.Advance(3 * time.Minute)
	e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
	e.checkMatchesSim(ctx)
}
