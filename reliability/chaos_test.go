package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/microapps/microapps/internal/pgcluster"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 30*time.Minute, "how long BenchmarkChaos injects faults before it settles and checks")
	chaosSeed     = flag.Int64("chaos.seed", 0, "seed of the chaos run's choices (0: a new one, printed)")
	chaosHistory  = flag.String("chaos.history", "", "file the chaos run writes its history to (default: a temporary file, kept by the benchmark)")
)

// chaosPlan is what a chaos run does, by size: the short form runs in
// `go test ./reliability/`, the long one is BenchmarkChaos.
type chaosPlan struct {
	duration       time.Duration // of faults and movement; then the system settles
	killEvery      [2]time.Duration
	pgRestartEvery [2]time.Duration
	burstEvery     [2]time.Duration
	large          qualtricssim.Spec
	moveEvery      [2]time.Duration
	syncEvery      [2]time.Duration
	// targetKills is the share of kills aimed at the replica working a
	// sync; each such kill costs River's rescue (90 s) before settling.
	targetKills     float64
	keepHistoryFile bool
}

// TestChaos is the short form of the chaos run: three replicas of
// the real binary on one throwaway cluster, Qualtrics moving, one or two
// replicas killed, one PostgreSQL restart, bursts of Qualtrics, SMTP and
// webhook faults, one replica's clock ahead; then the checker.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("three replicas and a throwaway cluster for a minute: skipped under -short (.ci/run runs it)")
	}
	t.Parallel()
	chaosRun(t, chaosPlan{
		duration:       45 * time.Second,
		killEvery:      [2]time.Duration{12 * time.Second, 25 * time.Second},
		pgRestartEvery: [2]time.Duration{20 * time.Second, 30 * time.Second},
		burstEvery:     [2]time.Duration{4 * time.Second, 10 * time.Second},
		large:          qualtricssim.Spec{Surveys: 12, Recipients: 2500},
		moveEvery:      [2]time.Duration{300 * time.Millisecond, 1200 * time.Millisecond},
		syncEvery:      [2]time.Duration{2 * time.Second, 6 * time.Second},
	})
}

// BenchmarkChaos is the long form:
//
//	go test ./reliability -run '^$' -bench Chaos -benchtime 1x -timeout 0 -chaos.duration 30m [-chaos.seed N] [-chaos.history FILE]
func BenchmarkChaos(b *testing.B) {
	for range b.N {
		chaosRun(b, chaosPlan{
			duration:        *chaosDuration,
			killEvery:       [2]time.Duration{30 * time.Second, 90 * time.Second},
			pgRestartEvery:  [2]time.Duration{2 * time.Minute, 5 * time.Minute},
			burstEvery:      [2]time.Duration{10 * time.Second, 40 * time.Second},
			large:           qualtricssim.Spec{Surveys: 40, Recipients: 20000},
			moveEvery:       [2]time.Duration{500 * time.Millisecond, 2 * time.Second},
			syncEvery:       [2]time.Duration{3 * time.Second, 10 * time.Second},
			targetKills:     0.8,
			keepHistoryFile: true,
		})
	}
}

// lockedRand is the run's one source of choices, from the printed seed.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func (l *lockedRand) chance(p float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}

func (l *lockedRand) between(r [2]time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return r[0] + time.Duration(l.r.Int64N(int64(r[1]-r[0])+1))
}

// history is the run's record: one JSON line per fault, Qualtrics change,
// delivery received, event forwarded and sync triggered, with its time.
type history struct {
	mu     sync.Mutex
	f      *os.File
	enc    *json.Encoder
	counts map[string]int
}

func (h *history) add(kind, what string, fields map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rec := map[string]any{"t": time.Now().UTC().Format(time.RFC3339Nano), "kind": kind, "what": what}
	for k, v := range fields {
		rec[k] = v
	}
	_ = h.enc.Encode(rec)
	h.counts[kind+" "+what]++
}

func (h *history) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[key]
}

var (
	chaosBuildOnce sync.Once
	chaosBin       string
	chaosBuildErr  error
)

// chaosBinary builds cmd/microapps with -tags chaos, the only build that
// reads MICROAPPS_CHAOS_CLOCK_OFFSET.
func chaosBinary(t testing.TB) string {
	t.Helper()
	microappsBinary(t) // the build directory, removed by TestMain
	chaosBuildOnce.Do(func() {
		chaosBin = filepath.Join(buildDir, "microapps-chaos")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "chaos", "-o", chaosBin, "github.com/microapps/microapps/cmd/microapps")
		if out, err := cmd.CombinedOutput(); err != nil {
			chaosBuildErr = fmt.Errorf("go build -tags chaos: %v\n%s", err, out)
		}
	})
	if chaosBuildErr != nil {
		t.Fatal(chaosBuildErr)
	}
	return chaosBin
}

// slot is one replica's place: a fixed port, and the processes that held it.
type slot struct {
	name string
	port int
	env  map[string]string
	bin  string

	mu    sync.Mutex
	cur   *chaosProc
	procs []*chaosProc
}

type chaosProc struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	started time.Time
	rss     []int64 // KiB, sampled
}

func (s *slot) base() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

func (s *slot) start() error {
	p := &chaosProc{out: &syncBuffer{}, done: make(chan struct{}), started: time.Now()}
	p.cmd = exec.Command(s.bin, "serve")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), fmt.Sprintf("MICROAPPS_HTTP_ADDR=127.0.0.1:%d", s.port)}
	for k, v := range s.env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.cur = p
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return nil
}

func (s *slot) current() *chaosProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *slot) alive() bool {
	p := s.current()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (s *slot) kill() {
	if p := s.current(); p != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (s *slot) stop() {
	p := s.current()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (s *slot) waitReady(timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !s.alive() {
			return fmt.Errorf("%s exited:\n%s", s.name, tail(s.current().out.String(), 3000))
		}
		if resp, err := c.Get(s.base() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready after %v", s.name, timeout)
}

func (s *slot) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.procs {
		b.WriteString(p.out.String())
	}
	return b.String()
}

// sampleRSS records the resident memory of the slot's live process.
func (s *slot) sampleRSS() {
	p := s.current()
	if p == nil || !s.alive() {
		return
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			s.mu.Lock()
			p.rss = append(p.rss, kb)
			s.mu.Unlock()
		}
	}
}

// balancer is the load balancer in front of the replicas: the admin API
// calls, the MICROAPPS_PUBLIC_URL of every replica and so the address of
// Qualtrics' event callbacks. A request goes to a live replica, another one
// if that one does not answer; callbacks are sometimes sent twice, to two
// replicas, or late.
type balancer struct {
	slots  []*slot
	rnd    *lockedRand
	hist   *history
	client *http.Client
	faulty atomic.Bool // duplicate and delay callbacks
	wg     sync.WaitGroup
}

func (lb *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.URL.Path, "/hooks/qualtrics/") && lb.faulty.Load() {
		switch {
		case lb.rnd.chance(0.15):
			lb.hist.add("event", "duplicated", map[string]any{"path": r.URL.Path})
			lb.wg.Add(1)
			go func() {
				defer lb.wg.Done()
				time.Sleep(time.Duration(200+lb.rnd.intN(2000)) * time.Millisecond)
				_, _ = lb.forward(r, body)
			}()
		case lb.rnd.chance(0.1):
			lb.hist.add("event", "late", nil)
			time.Sleep(time.Duration(1000+lb.rnd.intN(3000)) * time.Millisecond)
		}
	}
	resp, err := lb.forward(r, body)
	if strings.HasPrefix(r.URL.Path, "/hooks/qualtrics/") {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		lb.hist.add("event", "callback", map[string]any{"status": status, "error": errString(err)})
	}
	if err != nil {
		http.Error(w, "no replica answered", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (lb *balancer) forward(r *http.Request, body []byte) (*http.Response, error) {
	var lastErr error
	for attempt := range 40 {
		s := lb.slots[(lb.rnd.intN(len(lb.slots))+attempt)%len(lb.slots)]
		if !s.alive() {
			continue
		}
		req, _ := http.NewRequest(r.Method, s.base()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := lb.client.Do(req)
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			return resp, nil
		}
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("%s: 503", s.name)
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no replica alive")
	}
	return nil, lastErr
}

// apiCall is a tolerant admin API call through the balancer: chaos makes
// some fail, and the caller decides what that means.
func apiCall(c *http.Client, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// chaosIntegration is one registered integration and its brand.
type chaosIntegration struct {
	id, name, brand string
}

func chaosRun(t testing.TB, plan chaosPlan) {
	ctx := context.Background()
	seed := *chaosSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_007
	}
	t.Logf("chaos seed %d (replay with -chaos.seed %d)", seed, seed)
	rnd := &lockedRand{r: rand.New(rand.NewPCG(uint64(seed), 32))}
	histPath := *chaosHistory
	if histPath == "" {
		if plan.keepHistoryFile {
			histPath = filepath.Join(os.TempDir(), fmt.Sprintf("microapps-chaos-%d.jsonl", seed))
		} else {
			histPath = filepath.Join(t.TempDir(), "history.jsonl")
		}
	}
	hf, err := os.Create(histPath)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	hist := &history{f: hf, enc: json.NewEncoder(hf), counts: map[string]int{}}
	t.Logf("history: %s", histPath)
	hist.add("run", "start", map[string]any{"seed": seed, "duration": plan.duration.String()})

	// Qualtrics: a large brand, a small one, and one that two integrations share.
	large := plan.large
	large.BrandID = "chaoslarge"
	brands := []*qualtricssim.Brand{
		qualtricssim.Generate(seed, large),
		qualtricssim.Generate(seed+1, qualtricssim.Spec{BrandID: "chaossmall", Surveys: 5, Recipients: 300}),
		qualtricssim.Generate(seed+2, qualtricssim.Spec{BrandID: "chaosshared", Surveys: 6, Recipients: 500}),
	}
	tokens := map[string]string{}
	for _, b := range brands {
		tokens[b.ID] = b.Users[0].Tokens[0]
	}
	sim := qualtricssim.New(qualtricssim.Options{Brands: brands, Seed: seed, Limits: &qualtricssim.Limits{Disabled: true}})
	brands = nil
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()

	// Receivers: a mail relay and a webhook endpoint, both with faults.
	mail := startChaosSMTP(t, hist)
	hooks := newHookReceiver(hist)
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	// PostgreSQL: a throwaway cluster, restarted during the run.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	pg, err := pgcluster.New(cctx, pgcluster.Options{Settings: []string{"fsync=off", "max_connections=120"}})
	cancel()
	if err != nil {
		t.Fatalf("throwaway PostgreSQL cluster: %v", err)
	}
	defer func() {
		if err := pg.Remove(); err != nil {
			t.Errorf("removing the throwaway cluster: %v", err)
		}
	}()
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	dbURL, err := pg.CreateDatabase(cctx, "microapps")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL, store.Options{AppName: "chaos-check", MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Three replicas behind the balancer; the third's clock runs ahead.
	_, rawKeys := newKeyring(t)
	bin := chaosBinary(t)
	lb := &balancer{rnd: rnd, hist: hist, client: &http.Client{Timeout: 20 * time.Second}}
	lbSrv := httptest.NewServer(lb)
	defer lbSrv.Close()
	skew := time.Duration(2+rnd.intN(7)) * time.Second
	for i := range 3 {
		env := serveEnv(dbURL, rawKeys, 2)
		env["MICROAPPS_PUBLIC_URL"] = lbSrv.URL
		env["MICROAPPS_SMTP_URL"] = "smtp://" + mail.addr + "?tls=none"
		env["MICROAPPS_MAIL_FROM"] = "surveys@chaos.example.com"
		env["MICROAPPS_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
		if i == 2 {
			env["MICROAPPS_CHAOS_CLOCK_OFFSET"] = skew.String()
		}
		lb.slots = append(lb.slots, &slot{name: fmt.Sprintf("replica%d", i+1), port: freePort(t), env: env, bin: bin})
	}
	for _, s := range lb.slots {
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, s := range lb.slots {
			s.stop()
		}
		lb.wg.Wait()
		if t.Failed() {
			for _, s := range lb.slots {
				t.Logf("%s, last 3000 bytes:\n%s", s.name, tail(s.logs(), 3000))
			}
		}
	}()
	for _, s := range lb.slots {
		if err := s.waitReady(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	hist.add("fault", "clock ahead", map[string]any{"replica": lb.slots[2].name, "offset": skew.String()})

	// Integrations: one per brand, two for the shared one, each with two
	// Brand Admins, a webhook and Qualtrics events.
	client := &http.Client{Timeout: 30 * time.Second}
	admins := []string{"admin.one@chaos.example.com", "Admin.Two@Chaos.example.com"}
	var ints []chaosIntegration
	for i, brand := range []string{"chaoslarge", "chaossmall", "chaosshared", "chaosshared"} {
		name := fmt.Sprintf("Chaos %d %s", i+1, brand)
		code, body, err := apiCall(client, "POST", lbSrv.URL+"/api/v1/integrations", map[string]any{
			"name": name, "baseUrl": simSrv.URL + "/API/v3/", "token": tokens[brand],
			"events":   map[string]any{"enabled": true},
			"schedule": map[string]any{"fullSyncEvery": "5m", "incrementalSyncEvery": "1m"},
			"logging":  map[string]any{"enabled": true}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("POST integration: %d %v %s", code, err, body)
		}
		var in integrationResource
		_ = json.Unmarshal(body, &in)
		for _, a := range admins {
			if code, body, err := apiCall(client, "PUT", lbSrv.URL+"/api/v1/integrations/"+in.ID+"/brand-admins/"+a, nil); err != nil || code != http.StatusNoContent {
				t.Fatalf("PUT brand admin: %d %v %s", code, err, body)
			}
		}
		if code, body, err := apiCall(client, "PUT", lbSrv.URL+"/api/v1/integrations/"+in.ID+"/webhook", map[string]any{
			"url": hookSrv.URL + "/hook/" + in.ID, "secret": chaosWebhookSecret, "format": "json"}); err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT webhook: %d %v %s", code, err, body)
		}
		ints = append(ints, chaosIntegration{id: in.ID, name: name, brand: brand})
	}
	tBegin := time.Now()
	for _, in := range ints {
		if err := chaosSync(client, lbSrv.URL, st, in.id, 4*time.Minute); err != nil {
			t.Fatalf("first full sync of %s: %v", in.name, err)
		}
	}
	hist.add("run", "first syncs done", map[string]any{"took": time.Since(tBegin).String()})
	time.Sleep(skew + time.Second) // no change may look older than a first sync to the replica ahead
	model := newChaosModel(sim, ints, admins, tBegin)
	model.snapshotAll(time.Now())

	// Chaos: Qualtrics moves, syncs are asked for, faults come and go.
	emails := []string{"ann@chaos.example.com", "bob@chaos.example.com", " Cyd.Case@Chaos.Example.com ", "dee@chaos.example.com",
		"eve@chaos.example.com", "fay@chaos.example.com", "gus@chaos.example.com", "hal@chaos.example.com",
		"ida@chaos.example.com", "jon@chaos.example.com", "kim@chaos.example.com", "lou@chaos.example.com"}
	mover := qualtricssim.NewMover(sim, seed, emails)
	lb.faulty.Store(true)
	chaosCtx, stopChaos := context.WithTimeout(ctx, plan.duration)
	defer stopChaos()
	var wg sync.WaitGroup
	var failures []string
	var fmu sync.Mutex
	fail := func(format string, args ...any) {
		fmu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		fmu.Unlock()
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-chaosCtx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	wg.Add(1)
	go func() { // Qualtrics moves
		defer wg.Done()
		for sleep(rnd.between(plan.moveEvery)) {
			c, err := mover.Step(time.Now())
			if err != nil {
				fail("mover: %v", err)
				return
			}
			hist.add("change", c.Kind, map[string]any{"brand": c.BrandID, "survey": c.SurveyID, "distribution": c.DistributionID,
				"contact": c.ContactID, "email": c.Email, "status": c.Status, "expiry": c.Expiry})
			model.snapshot(c, time.Now())
		}
	}()
	wg.Add(1)
	go func() { // syncs asked for through the API, besides the schedule
		defer wg.Done()
		for sleep(rnd.between(plan.syncEvery)) {
			in := ints[rnd.intN(len(ints))]
			kind := "incremental"
			if rnd.chance(0.25) {
				kind = "full"
			}
			code, _, err := apiCall(client, "POST", lbSrv.URL+"/api/v1/integrations/"+in.id+"/syncs", map[string]string{"kind": kind})
			hist.add("sync", "asked", map[string]any{"integration": in.name, "syncKind": kind, "status": code, "error": errString(err)})
		}
	}()
	rec := &recoveries{st: st}
	wg.Add(1)
	go func() { // SIGKILL a replica, restart it
		defer wg.Done()
		for sleep(rnd.between(plan.killEvery)) {
			// Mostly the replica working a sync, when one is.
			var s *slot
			var running []int64
			if rnd.chance(plan.targetKills) {
				for i := range 20 {
					if s, running = rec.working(ctx, lb.slots); s != nil {
						break
					}
					if i == 0 { // none working: ask for a full sync to kill
						in := ints[rnd.intN(len(ints))]
						code, _, err := apiCall(client, "POST", lbSrv.URL+"/api/v1/integrations/"+in.id+"/syncs", map[string]string{"kind": "full"})
						hist.add("sync", "asked", map[string]any{"integration": in.name, "syncKind": "full", "status": code, "error": errString(err)})
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			if s == nil {
				s = lb.slots[rnd.intN(len(lb.slots))]
			}
			if !s.alive() {
				continue
			}
			s.kill()
			killedAt := time.Now()
			rec.killed(killedAt, running)
			hist.add("fault", "SIGKILL", map[string]any{"replica": s.name, "runsInFlight": running})
			time.Sleep(time.Duration(500+rnd.intN(4000)) * time.Millisecond)
			if err := s.start(); err != nil {
				fail("restart %s: %v", s.name, err)
				return
			}
			hist.add("fault", "restarted", map[string]any{"replica": s.name, "downFor": time.Since(killedAt).String()})
		}
	}()
	wg.Add(1)
	go func() { // restart PostgreSQL
		defer wg.Done()
		for sleep(rnd.between(plan.pgRestartEvery)) {
			down := time.Duration(500+rnd.intN(3500)) * time.Millisecond
			hist.add("fault", "PostgreSQL stop", map[string]any{"for": down.String()})
			if err := pg.Stop(ctx); err != nil {
				fail("pg_ctl stop: %v", err)
			}
			time.Sleep(down)
			if err := pg.Start(ctx); err != nil {
				fail("pg_ctl start: %v", err)
				return
			}
			hist.add("fault", "PostgreSQL start", nil)
		}
	}()
	wg.Add(1)
	go func() { // bursts: Qualtrics, the mail relay, the webhook receiver
		defer wg.Done()
		for sleep(rnd.between(plan.burstEvery)) {
			span := time.Duration(2000+rnd.intN(8000)) * time.Millisecond
			var what string
			switch rnd.intN(8) {
			case 0:
				what = "Qualtrics 429"
				sim.SetLimits(qualtricssim.Limits{BrandPerMinute: 20 + rnd.intN(40), RetryAfter: rnd.chance(0.5)})
			case 1:
				what = "Qualtrics 500"
				sim.SetFaults(qualtricssim.Faults{ErrorRate500: 0.2})
			case 2:
				what = "Qualtrics 504"
				sim.SetFaults(qualtricssim.Faults{ErrorRate504: 0.2})
			case 3:
				what = "Qualtrics slow"
				sim.SetFaults(qualtricssim.Faults{Latency: time.Duration(200+rnd.intN(1500)) * time.Millisecond})
			case 4:
				what = "Qualtrics truncated"
				sim.SetFaults(qualtricssim.Faults{TruncateRate: 0.1})
			case 5:
				what = "SMTP drops mid-message"
				mail.dropping.Store(true)
			case 6:
				what = "webhook 500"
				hooks.mode.Store(hookFail)
			case 7:
				what = "webhook hangs"
				hooks.mode.Store(hookHang)
			}
			hist.add("fault", what, map[string]any{"for": span.String()})
			time.Sleep(span)
			sim.SetFaults(qualtricssim.Faults{})
			sim.SetLimits(qualtricssim.Limits{Disabled: true})
			mail.dropping.Store(false)
			hooks.mode.Store(hookOK)
		}
	}()
	wg.Add(1)
	go func() { // memory and recoveries
		defer wg.Done()
		tick := 0
		for sleep(time.Second) {
			rec.poll(ctx)
			if tick++; tick%5 == 0 {
				for _, s := range lb.slots {
					s.sampleRSS()
				}
			}
		}
	}()
	wg.Wait()
	lb.faulty.Store(false)
	if len(failures) > 0 {
		t.Fatalf("the chaos driver failed: %v", failures)
	}
	hist.add("run", "faults stop", nil)

	// Settle: every replica up, PostgreSQL up, no fault; retries brought
	// forward; a full sync of every integration.
	for _, s := range lb.slots {
		if !s.alive() {
			_ = s.start()
		}
	}
	for _, s := range lb.slots {
		if err := s.waitReady(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	settleStart := time.Now()
	waitQuiet(t, st, 3*time.Minute)
	tSettle := time.Now()
	for _, in := range ints {
		if err := chaosSync(client, lbSrv.URL, st, in.id, 4*time.Minute); err != nil {
			t.Errorf("settling full sync of %s: %v", in.name, err)
		}
	}
	tSettleEnd := time.Now()
	waitDeliveries(t, st, 3*time.Minute)
	rec.poll(ctx)
	hist.add("run", "settled", map[string]any{"took": time.Since(settleStart).String()})
	for _, s := range lb.slots {
		s.sampleRSS()
	}

	chk := &chaosChecker{t: t, st: st, sim: sim, ints: ints, model: model, mail: mail, hooks: hooks, hist: hist,
		slots: lb.slots, rec: rec, secrets: []string{adminToken, rawKeys, strings.TrimPrefix(rawKeys, "k1:"), chaosWebhookSecret},
		tBegin: tBegin, tSettle: tSettle, tSettleEnd: tSettleEnd, skew: skew, seed: seed}
	for _, tok := range tokens {
		chk.secrets = append(chk.secrets, tok)
	}
	chk.run()
}

const chaosWebhookSecret = "chaos-webhook-secret-0123456789"

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// chaosSync asks for a full sync and waits for it to succeed, asking again
// after a failed one (a fault may still have been on its way).
func chaosSync(c *http.Client, base string, st *store.Store, integrationID string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		code, body, err := apiCall(c, "POST", base+"/api/v1/integrations/"+integrationID+"/syncs", map[string]string{"kind": "full"})
		if err != nil || code != http.StatusAccepted {
			last = fmt.Sprintf("POST sync: %d %v %s", code, err, body)
			time.Sleep(time.Second)
			continue
		}
		var run syncRunResource
		_ = json.Unmarshal(body, &run)
		for time.Now().Before(deadline) {
			got, err := st.GetSyncRun(context.Background(), integrationID, run.ID)
			if err == nil && got.Status == "succeeded" {
				return nil
			}
			if err == nil && got.Status == "failed" {
				last = fmt.Sprintf("run %d failed: %s", run.ID, got.Error)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return fmt.Errorf("no full sync succeeded within %v: %s", timeout, last)
}

// waitQuiet waits until no sync run is queued or running, bringing River's
// retries forward (a job that failed during an outage may be scheduled
// minutes ahead).
func waitQuiet(t testing.TB, st *store.Store, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		_, _ = st.Pool().Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE state IN ('retryable', 'scheduled') AND kind IN ('sync', 'deliver')`)
		var open int
		err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')`).Scan(&open)
		if err == nil && open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d sync runs still queued or running %v after the faults stopped", open, timeout)
			return
		}
	}
}

// waitDeliveries waits until no delivery is pending.
func waitDeliveries(t testing.TB, st *store.Store, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		_, _ = st.Pool().Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE state IN ('retryable', 'scheduled') AND kind = 'deliver'`)
		var pending, jobs int
		err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries WHERE status = 'pending'),
			(SELECT count(*) FROM river_job WHERE kind = 'deliver' AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending'))`).Scan(&pending, &jobs)
		if err == nil && pending == 0 && jobs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d deliveries pending and %d jobs not finished %v after settling", pending, jobs, timeout)
			return
		}
	}
}

// recoveries measures, for each SIGKILL, how long the sync runs in flight
// at that moment took to end.
type recoveries struct {
	st *store.Store
	mu sync.Mutex
	// pending: run id → kill times waiting for that run's end
	pending map[int64][]time.Time
	took    []time.Duration
	open    []int64
}

// working finds a replica working a sync job and the runs it works. River
// names a client after the host and the time it started
// ("vm_2026_12_07T21_10_48_916869"), which tells the replicas apart.
func (r *recoveries) working(ctx context.Context, slots []*slot) (*slot, []int64) {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// A run is worked in slices, one job each: the job running names the run.
	rows, err := r.st.Pool().Query(c, `SELECT (args->>'runId')::bigint, attempted_by[array_length(attempted_by, 1)]
		FROM river_job WHERE state = 'running' AND kind = 'sync'`)
	if err != nil {
		return nil, nil
	}
	defer rows.Close()
	var found *slot
	var runs []int64
	for rows.Next() {
		var id int64
		var client string
		if rows.Scan(&id, &client) != nil || len(client) < 26 {
			continue
		}
		// The microseconds follow an underscore, which time.Parse cannot read.
		at, err := time.Parse("2006_01_02T15_04_05", client[len(client)-26:len(client)-7])
		if err != nil {
			continue
		}
		for _, s := range slots {
			p := s.current()
			if p == nil || !s.alive() || at.Before(p.started.Add(-2*time.Second)) || at.After(p.started.Add(30*time.Second)) {
				continue
			}
			if found == nil || found == s {
				found = s
				runs = append(runs, id)
			}
		}
	}
	return found, runs
}

func (r *recoveries) killed(at time.Time, runs []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[int64][]time.Time{}
	}
	for _, id := range runs {
		r.pending[id] = append(r.pending[id], at)
	}
}

func (r *recoveries) poll(ctx context.Context) {
	r.mu.Lock()
	ids := make([]int64, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rows, err := r.st.Pool().Query(c, `SELECT id FROM sync_runs WHERE id = ANY($1) AND status IN ('succeeded', 'failed')`, ids)
	if err != nil {
		return
	}
	defer rows.Close()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for rows.Next() {
		var id int64
		if rows.Scan(&id) != nil {
			continue
		}
		for _, at := range r.pending[id] {
			r.took = append(r.took, now.Sub(at))
		}
		delete(r.pending, id)
	}
}
