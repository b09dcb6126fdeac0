package qualtrics

import (
	"testing"
	"time"
)

func TestRateLimits(t *testing.T) {
	t.Parallel()
	empty := answer(200, okEnvelope(`{"elements":[],"nextPage":null}`))
	t.Run("the integration budget spaces requests at the configured rate", func(t *testing.T) {
		t.Parallel()
		srv, n := scripted(t, whoamiOK)
		// 1,200/min is 20/s: after a burst of 1, ten more calls need ~500 ms.
		c, _ := newTestClient(t, srv, func(cfg *Config) { cfg.RequestsPerMinute = 1200; cfg.Burst = 1 })
		start := time.Now()
		for range 11 {
			if _, err := c.WhoAmI(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(start)
		if took < 450*time.Millisecond || took > 3*time.Second {
			t.Fatalf("11 calls took %v, want about 500ms", took)
		}
		if rate := float64(n.Load()-1) / took.Seconds(); rate > 22 {
			t.Fatalf("measured %.1f requests/s, budget is 20", rate)
		}
	})
	t.Run("without a budget requests are not delayed", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, whoamiOK)
		c, _ := newTestClient(t, srv, nil)
		start := time.Now()
		for range 20 {
			if _, err := c.WhoAmI(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took > 400*time.Millisecond {
			t.Fatalf("20 unthrottled calls took %v", took)
		}
	})
	t.Run("the history cap applies even without an integration budget", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, empty)
		// 1,200/min with the endpoint burst of 5: fifteen pages need ~500 ms.
		c, _ := newTestClient(t, srv, func(cfg *Config) {
			cfg.EndpointLimits = map[string]int{EndpointDistributionsHistory: 1200}
		})
		start := time.Now()
		for range 15 {
			if _, err := collect(t, c.DistributionHistory(ctxT(t), "EMD_1")); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took < 450*time.Millisecond || took > 3*time.Second {
			t.Fatalf("15 history pages took %v, want about 500ms", took)
		}
		// Other endpoints do not share the history cap.
		start = time.Now()
		for range 10 {
			if _, err := collect(t, c.Surveys(ctxT(t))); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took > 300*time.Millisecond {
			t.Fatalf("surveys were throttled by the history cap: %v", took)
		}
	})
	t.Run("the default caps are those Qualtrics documents", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, whoamiOK)
		c, _ := newTestClient(t, srv, nil)
		for ep, perMin := range map[string]int{EndpointDistributionsHistory: 300, EndpointDistributionsLinks: 500} {
			l := c.endpoints[ep]
			if l == nil || float64(l.Limit())*60 < float64(perMin)-0.01 || float64(l.Limit())*60 > float64(perMin)+0.01 {
				t.Fatalf("%s limiter = %v, want %d/min", ep, l, perMin)
			}
		}
	})
}
