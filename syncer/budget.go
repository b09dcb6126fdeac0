package syncer

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// BrandLimits is a Qualtrics brand's API budget in requests per minute: the
// whole brand's, and some endpoints' own caps. Every replica and every
// integration of a brand draw from one token bucket per limit, kept in
// PostgreSQL.
type BrandLimits struct {
	PerMinute int            // the brand's budget; default 3,000
	Endpoints map[string]int // per-endpoint caps; default history 300, links 500
	// Share is the part of each cap this service uses (default 0.95). The
	// rest, and a burst of at most the rest, keeps the calls of any minute
	// under the cap however Qualtrics counts its minutes.
	Share float64
	// TimeScale makes every limit apply per minute/TimeScale instead of per
	// minute, for benchmarks against a simulator run as many times faster.
	// 0 or 1 is real time.
	TimeScale float64
	// Disabled turns the shared budget off (each client then keeps only its
	// own per-endpoint limits).
	Disabled bool
}

// DefaultBrandLimits are Qualtrics' documented limits.
func DefaultBrandLimits() BrandLimits {
	return BrandLimits{PerMinute: 3000, Share: 0.95, Endpoints: map[string]int{
		qualtrics.EndpointDistributionsHistory: 300,
		qualtrics.EndpointDistributionsLinks:   500,
	}}
}

func (l BrandLimits) withDefaults() BrandLimits {
	d := DefaultBrandLimits()
	if l.PerMinute <= 0 {
		l.PerMinute = d.PerMinute
	}
	if l.Endpoints == nil {
		l.Endpoints = d.Endpoints
	}
	if l.Share <= 0 || l.Share > 1 {
		l.Share = d.Share
	}
	if l.TimeScale < 1 {
		l.TimeScale = 1
	}
	return l
}

// bucket is the token bucket of a cap per minute: its rate per second, and a
// burst no larger than the headroom the share leaves (at least one token),
// so that in any window of a minute no more than the cap is sent.
func (l BrandLimits) bucket(endpoint string, perMinute int) store.RateBucket {
	rate := float64(perMinute) * l.Share / 60 * l.TimeScale
	burst := max(1, float64(perMinute)*(1-l.Share))
	return store.RateBucket{Endpoint: endpoint, Rate: rate, Burst: burst}
}

// brandLimiter is the qualtrics.Limiter of one integration's brand.
type brandLimiter struct {
	s     *Syncer
	key   string
	brand store.RateBucket
	caps  map[string]store.RateBucket
}

func (s *Syncer) brandLimiter(in store.Integration) qualtrics.Limiter {
	if s.brandLimits.Disabled {
		return nil
	}
	// Integrations of one brand share its budget; an integration whose brand
	// is not known yet has one of its own.
	key := "brand:" + in.BrandID
	if in.BrandID == "" {
		key = "integration:" + in.ID
	}
	l := &brandLimiter{s: s, key: key, brand: s.brandLimits.bucket("*", s.brandLimits.PerMinute), caps: map[string]store.RateBucket{}}
	for ep, n := range s.brandLimits.Endpoints {
		if n > 0 {
			l.caps[ep] = s.brandLimits.bucket(ep, n)
		}
	}
	return l
}

func (l *brandLimiter) buckets(endpoint string) []store.RateBucket {
	if c, ok := l.caps[endpoint]; ok {
		return []store.RateBucket{l.brand, c}
	}
	return []store.RateBucket{l.brand}
}

// Wait takes a token of the brand's budget (and of the endpoint's cap) from
// PostgreSQL, sleeping as long as the buckets say when they are empty.
func (l *brandLimiter) Wait(ctx context.Context, endpoint string) error {
	b := l.buckets(endpoint)
	if err := l.ensure(ctx); err != nil {
		return err
	}
	for {
		ok, wait, err := l.s.store.TakeRateTokens(ctx, l.key, b)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// A little jitter spreads the callers that wait on the same bucket.
		wait += time.Duration(rand.Int64N(int64(wait/5) + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

func (l *brandLimiter) ensure(ctx context.Context) error {
	l.s.bucketsMu.Lock()
	known := l.s.buckets[l.key]
	l.s.bucketsMu.Unlock()
	if known {
		return nil
	}
	all := []store.RateBucket{l.brand}
	for _, c := range l.caps {
		all = append(all, c)
	}
	if err := l.s.store.EnsureRateBuckets(ctx, l.key, all); err != nil {
		return err
	}
	l.s.bucketsMu.Lock()
	l.s.buckets[l.key] = true
	l.s.bucketsMu.Unlock()
	return nil
}

// Throttled holds the whole brand back, on every replica, for as long as the
// 429 said (or the client's backoff): a 429 may come from the brand's budget
// that other tools share, whichever endpoint drew it.
func (l *brandLimiter) Throttled(endpoint string, wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.s.store.ThrottleRateBucket(ctx, l.key, "*", wait); err != nil {
		l.s.log.Warn("rate limit not shared", zap.String("brand", l.key), zap.String("endpoint", endpoint), zap.Error(err))
	}
}
