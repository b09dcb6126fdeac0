package main

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// mix is the share of each page in the open-loop load, as people use the
// product: recipients (hundreds of thousands) open My active surveys and
// follow a survey to its details, now and then look at their notifications;
// Brand Admins (one or a few per brand) look at open surveys, a survey's
// results and a distribution's data. Weights are per 100 requests.
var mix = []struct {
	page   string
	weight int
}{
	{"My active surveys", 40},
	{"Survey details", 30},
	{"Notifications", 10},
	{"Open surveys", 8},
	{"Survey results (recipients page)", 4},
	{"Survey results (a later page)", 2},
	{"Distribution data", 6},
}

// parseRates reads -rate: requests per second, comma-separated.
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rate: %q is not a positive number of requests per second", f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// arrivals is an open-loop schedule: the send times, from 0, of a Poisson
// process of rate requests per second (exponential gaps), for at most dur
// and at most limit requests.
func arrivals(rng *rand.Rand, rate float64, dur time.Duration, limit int) []time.Duration {
	var at []time.Duration
	t := 0.0
	for len(at) < limit {
		t += rng.ExpFloat64() / rate
		if t >= dur.Seconds() {
			break
		}
		at = append(at, time.Duration(t*float64(time.Second)))
	}
	return at
}

// weighted picks index i with probability weights[i] / sum(weights).
func weighted(rng *rand.Rand, weights []int) func() int {
	cum := make([]int, len(weights))
	total := 0
	for i, w := range weights {
		total += w
		cum[i] = total
	}
	return func() int {
		n := rng.IntN(total)
		i, _ := slices.BinarySearch(cum, n+1)
		return i
	}
}

// shot is one request of an open-loop run.
type shot struct {
	page   int
	path   string
	user   string
	lat    time.Duration // from its intended send time to the end of its body
	failed bool
}

type openResult struct {
	shots    []shot
	failed   int
	firstErr string
	lagP99   time.Duration // how late the generator sent, p99 (already inside lat)
}

// openLoop sends one request at each time of at (from a start just after
// the call), each from its own goroutine whether or not the earlier ones
// have answered, so a slow server makes requests queue rather than wait to
// be sent (no coordinated omission). A request's latency runs from the time
// it was due, so a generator that falls behind counts against the server,
// never for it. reqOf(i) is the request at[i] sends.
func openLoop(client *http.Client, base string, at []time.Duration, reqOf func(i int) (page int, path, user string)) openResult {
	shots := make([]shot, len(at))
	lags := make([]time.Duration, len(at))
	var mu sync.Mutex
	res := openResult{}
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	for i, off := range at {
		due := start.Add(off)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		lags[i] = max(0, time.Since(due))
		page, path, user := reqOf(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(msg string) {
				mu.Lock()
				res.failed++
				if res.firstErr == "" {
					res.firstErr = msg
				}
				mu.Unlock()
			}
			r, _ := http.NewRequest("GET", base+path, nil)
			if user != "" {
				r.Header.Set("X-Forwarded-Email", user)
			}
			resp, err := client.Do(r)
			ok := false
			if err != nil {
				fail(err.Error())
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if ok = resp.StatusCode == http.StatusOK; !ok {
					fail(fmt.Sprintf("%s: %d", path, resp.StatusCode))
				}
			}
			shots[i] = shot{page: page, path: path, user: user, lat: time.Since(due), failed: !ok}
		}()
	}
	wg.Wait()
	res.shots = shots
	slices.Sort(lags)
	if len(lags) > 0 {
		res.lagP99 = lags[rank(len(lags), 0.99)]
	}
	return res
}

// rank is the nearest-rank index of quantile q in n sorted values.
func rank(n int, q float64) int {
	i := int(float64(n)*q+0.999999) - 1
	return min(n-1, max(0, i))
}

// quantiles of the answered requests of shots whose page keep accepts, in
// ms: p50, p99, max, and how many there were.
func quantiles(shots []shot, keep func(page int) bool) (p50, p99, mx float64, n int) {
	var lat []time.Duration
	for _, s := range shots {
		if !s.failed && keep(s.page) {
			lat = append(lat, s.lat)
		}
	}
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lat)
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return msOf(lat[rank(len(lat), 0.5)]), msOf(lat[rank(len(lat), 0.99)]), msOf(lat[len(lat)-1]), len(lat)
}

type rateOptions struct {
	rates   []float64
	dur     time.Duration // of each run
	limit   int           // requests of each run at most
	reps    int
	sync    syncOptions
	noSync  bool
	slowest int // requests of each run to log, slowest first
}

// rateCell is one repetition of one rate in one phase.
type rateCell struct {
	mix, floor openResult
	p50, p99   float64
	mx         float64
	floorP99   float64
	n          int
}

// rate measures the pages under an open-loop load at each rate, alone and
// while a brand's first full sync runs at its rate-limit floor, each rate
// with an open-loop run of /readyz at the same rate just before it as the
// machine's floor.
func (b *bench) rate(o rateOptions) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	defer srv.close()
	idx := map[string]int{}
	for i, p := range srv.pages {
		idx[p.name] = i
	}
	var mixPages, weights []int
	for _, m := range mix {
		i, ok := idx[m.page]
		if !ok {
			return fmt.Errorf("mix: no page %q", m.page)
		}
		mixPages = append(mixPages, i)
		weights = append(weights, m.weight)
	}
	floor := idx[floorPage]

	// Warm up as the closed loop does (a running service's pool holds
	// connections with the catalog loaded and statements prepared), then
	// the open loop itself for a few seconds.
	for _, p := range srv.pages {
		if _, _, _, err := load(srv.client, srv.base, 200, p.req); err != nil {
			return fmt.Errorf("warm-up of %s: %w", p.name, err)
		}
	}
	b.openRun(srv, o.rates[0], 5*time.Second, o.limit, 99, mixPages, weights)

	run := func(phase string) [][]rateCell {
		cells := make([][]rateCell, len(o.rates))
		for rep := range o.reps {
			for i, r := range o.rates {
				// The same seeds in both phases: the same schedule and mix.
				seed := uint64(rep*1000 + i)
				c := rateCell{}
				cpu0 := readCPU()
				c.floor = b.openRun(srv, r, o.dur, o.limit, seed, []int{floor}, []int{1})
				_, c.floorP99, _, _ = quantiles(c.floor.shots, func(int) bool { return true })
				c.mix = b.openRun(srv, r, o.dur, o.limit, seed, mixPages, weights)
				c.p50, c.p99, c.mx, c.n = quantiles(c.mix.shots, func(int) bool { return true })
				fmt.Fprintf(os.Stderr, "%s rep %d, %g req/s: %d requests, p50 %.1f p99 %.1f max %.1f ms, %d failed; /readyz p99 %.1f ms; generator lag p99 %s; load average %s; %s\n",
					phase, rep+1, r, len(c.mix.shots), c.p50, c.p99, c.mx, c.mix.failed, c.floorP99, c.mix.lagP99.Round(10*time.Microsecond), loadAvg(), readCPU().since(cpu0))
				cells[i] = append(cells[i], c)
				if o.slowest > 0 {
					slow := slices.Clone(c.mix.shots)
					slices.SortFunc(slow, func(a, b shot) int { return cmp.Compare(b.lat, a.lat) })
					for _, s := range slow[:min(o.slowest, len(slow))] {
						fmt.Fprintf(os.Stderr, "  slow: %.1f ms %s as %s\n", float64(s.lat.Microseconds())/1000, s.path, s.user)
					}
				}
			}
		}
		return cells
	}

	fmt.Fprintf(b.out, "open loop: Poisson arrivals, each request its own goroutine, latency from its due time; %s a run (at most %d requests), /readyz at the same rate just before each; median of %d repetitions\n\n",
		o.dur, o.limit, o.reps)
	alone := run("alone")
	var syncing [][]rateCell
	var report string
	if !o.noSync {
		s, err := b.startSyncs(srv, o.sync)
		if err != nil {
			return err
		}
		syncing = run("syncing")
		report, err = s.stop()
		if err != nil {
			return err
		}
	}

	fmt.Fprintln(b.out, "| rate (req/s) | while | requests a run | p50 | p99 | p99 range | max (worst run) | /readyz p99 | p99 ÷ /readyz p99 | errors |")
	fmt.Fprintln(b.out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	row := func(r float64, while string, cs []rateCell) {
		med := func(f func(rateCell) float64) float64 {
			v := make([]float64, len(cs))
			for i, c := range cs {
				v[i] = f(c)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		p99s := make([]float64, len(cs))
		worst, errs := 0.0, 0
		for i, c := range cs {
			p99s[i] = c.p99
			worst = max(worst, c.mx)
			errs += c.mix.failed + c.floor.failed
		}
		slices.Sort(p99s)
		p99, fl := med(func(c rateCell) float64 { return c.p99 }), med(func(c rateCell) float64 { return c.floorP99 })
		fmt.Fprintf(b.out, "| %g | %s | %.0f | %.1f ms | %.1f ms | %.1f–%.1f ms | %.0f ms | %.1f ms | %.1f× | %d |\n",
			r, while, med(func(c rateCell) float64 { return float64(len(c.mix.shots)) }), med(func(c rateCell) float64 { return c.p50 }),
			p99, p99s[0], p99s[len(p99s)-1], worst, fl, p99/fl, errs)
	}
	for i, r := range o.rates {
		row(r, "alone", alone[i])
		if syncing != nil {
			row(r, fmt.Sprintf("a %dk brand's first full sync runs at its floor", o.sync.recipients/1000), syncing[i])
		}
	}
	fmt.Fprintln(b.out)
	if report != "" {
		fmt.Fprintln(b.out, report)
		fmt.Fprintln(b.out)
	}
	b.perPage(srv.pages, mixPages, o.rates, alone, syncing)
	return nil
}

// perPage gives each page's p50/p99 within the mix, all repetitions of a
// rate pooled: which page the tail belongs to.
func (b *bench) perPage(pages []page, mixPages []int, rates []float64, alone, syncing [][]rateCell) {
	fmt.Fprint(b.out, "| page (share of the mix) |")
	for _, r := range rates {
		fmt.Fprintf(b.out, " %g req/s alone | %g while syncing |", r, r)
	}
	fmt.Fprint(b.out, "\n|---|")
	for range rates {
		fmt.Fprint(b.out, "---:|---:|")
	}
	fmt.Fprintln(b.out)
	pooled := func(cs []rateCell) []shot {
		var all []shot
		for _, c := range cs {
			all = append(all, c.mix.shots...)
		}
		return all
	}
	for k, p := range mixPages {
		fmt.Fprintf(b.out, "| %s (%d%%) |", pages[p].name, mix[k].weight)
		for i := range rates {
			for _, phase := range [][][]rateCell{alone, syncing} {
				if phase == nil {
					fmt.Fprint(b.out, " – |")
					continue
				}
				p50, p99, _, _ := quantiles(pooled(phase[i]), func(pg int) bool { return pg == p })
				fmt.Fprintf(b.out, " %.1f / %.1f |", p50, p99)
			}
		}
		fmt.Fprintln(b.out)
	}
	fmt.Fprintln(b.out, "\n(p50 / p99 in ms, each page's requests of every repetition pooled)")
	fmt.Fprintln(b.out)
}

// openRun is one open-loop run at rate over the pages (indexes into
// srv.pages) with the given weights, its schedule and mix drawn from seed.
func (b *bench) openRun(srv *server, rate float64, dur time.Duration, limit int, seed uint64, pages, weights []int) openResult {
	rng := rand.New(rand.NewPCG(seed, uint64(rate)))
	at := arrivals(rng, rate, dur, limit)
	next := weighted(rng, weights)
	which := make([]int, len(at))
	for i := range which {
		which[i] = pages[next()]
	}
	return openLoop(srv.client, srv.base, at, func(i int) (int, string, string) {
		path, user := srv.pages[which[i]].req()
		return which[i], path, user
	})
}

// loadAvg is the machine's 1-minute load average: on a shared 2-core
// machine, what else ran during a run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// cpuSample is the machine's CPU time (busy and all, from /proc/stat) and
// this process's own (server, load generator and syncer; not PostgreSQL).
type cpuSample struct {
	busy, total, self float64 // seconds
	at                time.Time
	// Pressure stall totals (/proc/pressure, µs): time some task waited for
	// a CPU, and some (all) non-idle tasks waited for I/O.
	cpuSome, ioSome, ioFull float64
}

// pressure reads the "some" and "full" totals of /proc/pressure/<what>.
func pressure(what string) (some, full float64) {
	b, err := os.ReadFile("/proc/pressure/" + what)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				if f[0] == "some" {
					some = n
				} else {
					full = n
				}
			}
		}
	}
	return some, full
}

func readCPU() cpuSample {
	c := cpuSample{at: time.Now()}
	c.cpuSome, _ = pressure("cpu")
	c.ioSome, c.ioFull = pressure("io")
	const tick = 100 // USER_HZ
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			c.total += n / tick
			if i != 3 && i != 4 { // idle, iowait
				c.busy += n / tick
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			k, _ := strconv.ParseFloat(f[12], 64)
			c.self = (u + k) / tick
		}
	}
	return c
}

// since describes the CPU used between c0 and c: the machine's busy share
// of its cores and this process's share.
func (c cpuSample) since(c0 cpuSample) string {
	total := c.total - c0.total
	if total <= 0 {
		return "cpu ?"
	}
	cores := total / c.at.Sub(c0.at).Seconds()
	wall := c.at.Sub(c0.at).Seconds() * 1e6
	return fmt.Sprintf("machine %.0f%% busy of %.0f cores, this process %.0f%%; stalled: on CPU %.0f%%, on I/O %.0f%% (all tasks %.1f%%) of the time",
		100*(c.busy-c0.busy)/total, cores, 100*(c.self-c0.self)/total,
		100*(c.cpuSome-c0.cpuSome)/wall, 100*(c.ioSome-c0.ioSome)/wall, 100*(c.ioFull-c0.ioFull)/wall)
}
