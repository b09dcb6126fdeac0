package qualtrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
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

// grantLog is a Limiter that grants at once and records when.
type grantLog struct {
	mu     sync.Mutex
	grants []time.Time
	err    error
}

func (g *grantLog) Wait(context.Context, string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	g.grants = append(g.grants, time.Now())
	return nil
}

func (g *grantLog) Throttled(string, time.Duration) {}

// TestSharedTokenIsTakenLast checks that a shared (brand) token is taken right
// before its request goes out: after the integration's own limiter and after
// a slow OAuth token request. A token taken earlier is spent in one minute
// of the brand's budget while its request lands in the next, which let one
// window carry more calls than the cap.
func TestSharedTokenIsTakenLast(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			time.Sleep(500 * time.Millisecond) // a slow token endpoint
			writeJSON(w, 200, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
		default:
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
			whoamiOK(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	shared := &grantLog{}
	c, _ := newTestClient(t, srv, func(cfg *Config) {
		cfg.Auth = Auth{OAuth: &OAuthConfig{ClientID: "client-1", ClientSecret: testClientSecret}}
		cfg.Limiter = shared
		// The integration's own budget: 2/s, so each call after the first
		// waits ~500 ms on it.
		cfg.RequestsPerMinute, cfg.Burst = 120, 1
	})
	for range 4 {
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if len(arrivals) != 4 || len(shared.grants) != 4 {
		t.Fatalf("%d requests, %d shared tokens; want 4 and 4", len(arrivals), len(shared.grants))
	}
	for i := range arrivals {
		// Sent at once: well under the 500 ms of either wait (a loaded
		// machine's scheduling aside).
		if gap := arrivals[i].Sub(shared.grants[i]); gap > 250*time.Millisecond {
			t.Errorf("call %d reached the API %v after its shared token was taken; want it sent at once", i+1, gap.Round(time.Millisecond))
		}
	}
}

// TestLimiterErrorsAreTheirOwn checks that a failing shared limiter (its
// database down) fails the call with a *LimiterError, sends nothing and is no
// APIError, so a sync does not count it as a failure of Qualtrics.
func TestLimiterErrorsAreTheirOwn(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, whoamiOK)
	cause := errors.New("store: take rate tokens: connection refused")
	c, _ := newTestClient(t, srv, func(cfg *Config) { cfg.Limiter = &grantLog{err: cause} })
	_, err := c.WhoAmI(ctxT(t))
	var le *LimiterError
	var apiErr *APIError
	switch {
	case err == nil:
		t.Fatal("the call succeeded without a token")
	case !errors.As(err, &le) || !IsLimiterError(err) || !errors.Is(err, cause):
		t.Fatalf("err = %v (%T), want a *LimiterError wrapping the cause", err, err)
	case errors.As(err, &apiErr):
		t.Fatalf("a limiter error reads as an API error: %v", err)
	case le.Endpoint != EndpointWhoAmI:
		t.Fatalf("endpoint %q", le.Endpoint)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("%d requests sent", got)
	}
}
