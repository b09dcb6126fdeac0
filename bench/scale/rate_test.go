package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestArrivalsArePoissonAtTheAskedRate(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{50, 200, 400} {
		at := arrivals(rand.New(rand.NewPCG(1, 2)), rate, 100*time.Second, 1_000_000)
		got := float64(len(at)) / 100
		// A Poisson count over 100 s has a standard deviation of sqrt(100·rate):
		// 0.7% of 200 req/s. 3% is four of them at 50 req/s.
		if math.Abs(got-rate)/rate > 0.03 {
			t.Errorf("%g req/s asked: %d arrivals in 100 s, %.1f req/s", rate, len(at), got)
		}
		// Exponential gaps: their standard deviation equals their mean (a
		// fixed interval would give 0, bursts more than 1).
		var sum, sq float64
		prev := time.Duration(0)
		for _, a := range at {
			if a < prev {
				t.Fatalf("%g req/s: arrivals out of order: %s after %s", rate, a, prev)
			}
			g := (a - prev).Seconds()
			sum += g
			sq += g * g
			prev = a
		}
		n := float64(len(at))
		mean := sum / n
		cv := math.Sqrt(sq/n-mean*mean) / mean
		if cv < 0.95 || cv > 1.05 {
			t.Errorf("%g req/s: gaps' coefficient of variation %.3f, want about 1 (exponential)", rate, cv)
		}
	}
}

func TestArrivalsStopAtTheLimitOrTheDuration(t *testing.T) {
	t.Parallel()
	if at := arrivals(rand.New(rand.NewPCG(1, 2)), 1000, time.Minute, 500); len(at) != 500 {
		t.Errorf("limit 500: %d arrivals", len(at))
	}
	at := arrivals(rand.New(rand.NewPCG(1, 2)), 1000, time.Second, 1_000_000)
	if last := at[len(at)-1]; last >= time.Second {
		t.Errorf("1 s run: last arrival at %s", last)
	}
}

func TestTheMixSendsEachPageItsShare(t *testing.T) {
	t.Parallel()
	pages := map[string]bool{}
	for _, p := range (&bench{}).pageList() {
		pages[p.name] = true
	}
	var weights []int
	total := 0
	for _, m := range mix {
		if !pages[m.page] {
			t.Errorf("mix names %q, which is not a page", m.page)
		}
		weights = append(weights, m.weight)
		total += m.weight
	}
	if total != 100 {
		t.Errorf("mix weights add up to %d, want 100", total)
	}
	next := weighted(rand.New(rand.NewPCG(5, 5)), weights)
	const n = 200_000
	counts := make([]int, len(weights))
	for range n {
		counts[next()]++
	}
	for i, m := range mix {
		got := 100 * float64(counts[i]) / n
		if math.Abs(got-float64(m.weight)) > 0.5 {
			t.Errorf("%s: %.2f%% of the requests, want %d%%", m.page, got, m.weight)
		}
	}
}

func TestParseRates(t *testing.T) {
	t.Parallel()
	got, err := parseRates("50, 100,200,400")
	if err != nil || len(got) != 4 || got[0] != 50 || got[3] != 400 {
		t.Errorf("parseRates: %v, %v", got, err)
	}
	for _, bad := range []string{"0", "-5", "fast"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) accepted", bad)
		}
	}
}

func TestReadCPUCountsThisProcess(t *testing.T) {
	c0 := readCPU()
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x++
	}
	c := readCPU()
	if self := c.self - c0.self; self < 0.15 {
		t.Errorf("300 ms of spinning: this process used %.2f s of CPU (x=%d)", self, x)
	}
	if c.busy-c0.busy < c.self-c0.self-0.02 || c.total <= c0.total {
		t.Errorf("machine busy %.2f s, total %.2f s, below this process's %.2f s", c.busy-c0.busy, c.total-c0.total, c.self-c0.self)
	}
}
