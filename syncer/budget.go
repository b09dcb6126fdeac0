package syncer

import (
	"context"
	"math/rand/v2"
	"sync"
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
	// Recovery is the share of each cap a brand slowed down by a 429 (to
	// half its rate, on every replica) regains per minute without one;
	// default 0.05, so from half to the whole rate in ten minutes.
	Recovery float64
	// Disabled turns the shared budget off (each client then keeps only its
	// own per-endpoint limits).
	Disabled bool
}

// DefaultBrandLimits are Qualtrics' documented limits.
func DefaultBrandLimits() BrandLimits {
	return BrandLimits{PerMinute: 3000, Share: 0.95, Recovery: 0.05, Endpoints: map[string]int{
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
	if l.Recovery <= 0 {
		l.Recovery = d.Recovery
	}
	return l
}

// bucket is the token bucket of a cap per minute: its rate per second, and a
// burst no larger than the headroom the share leaves (at least one token),
// so that in any window of a minute no more than the cap is sent.
func (l BrandLimits) bucket(endpoint string, perMinute int) store.RateBucket {
	rate := float64(perMinute) * l.Share / 60 * l.TimeScale
	burst := max(1, float64(perMinute)*(1-l.Share))
	return store.RateBucket{Endpoint: endpoint, Rate: rate, Burst: burst, Recovery: l.Recovery / 60 * l.TimeScale}
}

// A 429 halves the rate of the buckets it concerns, never below
// throttleFloor of it; the 429s of calls already in flight when the first
// came back (within throttleGrace) are the same overrun and halve nothing.
const (
	throttleFloor = 0.1
	throttleGrace = time.Second
)

// IsLimiterError reports whether err is a failure of the brand budget (its
// database, say) or another rate limiter rather than of Qualtrics: no
// request was sent, and the sync must not count it against Qualtrics.
func IsLimiterError(err error) bool { return qualtrics.IsLimiterError(err) }

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

// buckets are the buckets a call to endpoint draws from, and the name of
// that set.
func (l *brandLimiter) buckets(endpoint string) ([]store.RateBucket, string) {
	if c, ok := l.caps[endpoint]; ok {
		return []store.RateBucket{l.brand, c}, endpoint
	}
	return []store.RateBucket{l.brand}, "*"
}

// Wait takes a token of the brand's budget (and of the endpoint's cap). The
// callers of one replica queue for it first come, first served, and one
// goroutine of the replica takes tokens from PostgreSQL for all of them.
func (l *brandLimiter) Wait(ctx context.Context, endpoint string) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	b, set := l.buckets(endpoint)
	return l.s.tokenQueue(l.key, set, b).wait(ctx)
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

// Throttled holds the whole brand (and the endpoint's cap) back, on every
// replica, for as long as the 429 said (or the client's backoff), and halves
// their rate: a 429 may come from the brand's budget that other tools share,
// whichever endpoint drew it. The rate comes back by BrandLimits.Recovery.
func (l *brandLimiter) Throttled(endpoint string, wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, _ := l.buckets(endpoint)
	th := store.RateThrottle{Wait: wait, Floor: throttleFloor, Grace: throttleGrace}
	if err := l.s.store.ThrottleRateBuckets(ctx, l.key, b, th); err != nil {
		l.s.log.Warn("rate limit not shared", zap.String("brand", l.key), zap.String("endpoint", endpoint), zap.Error(err))
	}
}

// tokenQueue is one replica's line of callers waiting for tokens of one set
// of a brand's buckets ("*" alone, or "*" and an endpoint's cap). While it is
// not empty one goroutine takes tokens for it, as many per statement as
// callers wait, and hands them out in arrival order: the brand's row is
// locked about once per token per replica however many callers wait, and no
// caller starves while later ones are served.
type tokenQueue struct {
	st      Store
	key     string
	buckets []store.RateBucket

	mu      sync.Mutex
	waiters []*tokenWaiter
	polling bool
}

type tokenWaiter struct {
	ready chan error // buffered: the poller never blocks on it
	gone  bool       // its caller gave up; guarded by tokenQueue.mu
}

// maxTokensPerTake bounds the tokens one statement takes for one replica.
const maxTokensPerTake = 64

func (s *Syncer) tokenQueue(key, set string, b []store.RateBucket) *tokenQueue {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	if s.queues == nil {
		s.queues = map[string]*tokenQueue{}
	}
	id := key + "\x00" + set
	q := s.queues[id]
	if q == nil {
		q = &tokenQueue{st: s.store, key: key, buckets: b}
		s.queues[id] = q
	}
	return q
}

func (q *tokenQueue) wait(ctx context.Context) error {
	w := &tokenWaiter{ready: make(chan error, 1)}
	q.mu.Lock()
	q.waiters = append(q.waiters, w)
	if !q.polling {
		q.polling = true
		go q.poll()
	}
	q.mu.Unlock()
	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
		q.mu.Lock()
		w.gone = true
		q.mu.Unlock()
		return context.Cause(ctx)
	}
}

// poll takes tokens for the queue until it is empty.
func (q *tokenQueue) poll() {
	for {
		q.mu.Lock()
		q.prune()
		want := 0
		for _, w := range q.waiters {
			if !w.gone {
				want++
			}
		}
		want = min(want, maxTokensPerTake)
		if want == 0 {
			q.polling = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, wait, err := q.st.TakeRateTokens(ctx, q.key, q.buckets, want)
		cancel()

		q.mu.Lock()
		if err != nil {
			// Every caller waiting now hears of it, rather than each one
			// after another attempt against a database that is not there.
			for _, w := range q.waiters {
				w.ready <- err
			}
			q.waiters, q.polling = nil, false
			q.mu.Unlock()
			return
		}
		for got > 0 && len(q.waiters) > 0 {
			w := q.waiters[0]
			q.waiters[0] = nil
			q.waiters = q.waiters[1:]
			if !w.gone {
				w.ready <- nil
				got--
			}
		}
		q.prune()
		waiting := len(q.waiters) > 0
		q.mu.Unlock()
		if !waiting {
			continue
		}
		// Several replicas may poll one brand: a little jitter keeps them
		// from meeting on its row at the same instant.
		wait += time.Duration(rand.Int64N(int64(wait/10) + 1))
		time.Sleep(wait)
	}
}

// prune drops the callers at the head of the line that gave up.
func (q *tokenQueue) prune() {
	for len(q.waiters) > 0 && q.waiters[0].gone {
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
	}
}
