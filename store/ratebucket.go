package store

import (
	"context"
	"math"
	"time"
)

// RateBucket is one token bucket of a brand: Endpoint "*" is the brand's whole
// budget, others an endpoint's own cap. Rate is in tokens per second.
//
// A 429 lowers a bucket to a share of its rate (its factor, kept in the row so
// every replica slows down together) and the share comes back by Recovery
// per second while no other 429 arrives: additive increase, multiplicative
// decrease. The burst shrinks with the share, and a bucket blocked after a
// 429 refills from the end of the block, never during it.
type RateBucket struct {
	Endpoint string
	Rate     float64
	Burst    float64
	// Recovery is the share of Rate a lowered bucket regains per second.
	Recovery float64
}

// RateThrottle is what a 429 does to a brand's buckets.
type RateThrottle struct {
	// Wait holds every replica's calls of the buckets back this long.
	Wait time.Duration
	// Floor is the lowest share of its rate a bucket is lowered to.
	Floor float64
	// Grace: a 429 within Grace of the bucket's last lowering is taken for
	// the same overrun (calls already in flight) and does not lower it again.
	Grace time.Duration
}

// takeRateTokens locks the buckets in endpoint order, works out each one's
// share of its rate ($5 recovery per second since factor_at) and the tokens
// it holds (refilled at the lowered rate, at most the lowered burst), grants
// up to $6 tokens that every bucket has, and says how long until the next
// token. One clock: the database's, the one every replica shares.
const takeRateTokens = `WITH cfg AS (
		SELECT * FROM unnest($2::text[], $3::double precision[], $4::double precision[], $5::double precision[])
			AS t(endpoint, rate, burst, recovery)
	), locked AS (
		SELECT r.endpoint, r.tokens, r.updated_at, r.blocked_until, r.factor, r.factor_at, clock_timestamp() AS now
		FROM rate_buckets r
		WHERE r.brand_key = $1 AND r.endpoint = ANY($2) ORDER BY r.endpoint FOR UPDATE
	), shared AS (
		SELECT l.*, c.rate, c.burst,
			least(1, l.factor + c.recovery * greatest(0, extract(epoch FROM l.now - coalesce(l.factor_at, l.now)))) AS f
		FROM locked l JOIN cfg c USING (endpoint)
	), cur AS (
		SELECT endpoint, now, blocked_until, rate * f AS rate,
			least(greatest(1, burst * f), tokens + greatest(0, extract(epoch FROM now - updated_at)) * rate * f) AS avail
		FROM shared
	), verdict AS (
		SELECT CASE WHEN bool_and(blocked_until IS NULL OR blocked_until <= now)
			THEN greatest(0, least($6, floor(min(avail))))::int ELSE 0 END AS n
		FROM cur
	), upd AS (
		UPDATE rate_buckets r SET tokens = cur.avail - verdict.n, updated_at = cur.now
		FROM cur, verdict WHERE verdict.n > 0 AND r.brand_key = $1 AND r.endpoint = cur.endpoint
		RETURNING 1
	)
	SELECT verdict.n,
		(SELECT max(greatest((1 - (avail - verdict.n)) / nullif(rate, 0),
			extract(epoch FROM coalesce(blocked_until, now) - now))) FROM cur),
		(SELECT count(*) FROM upd)
	FROM verdict`

// TakeRateTokens takes up to want tokens from each of the brand's buckets,
// as many from each, atomically across replicas, and says how many it got and
// how long until the next token (after a 429, until the block ends).
// EnsureRateBuckets must have created the buckets.
func (s *Store) TakeRateTokens(ctx context.Context, brandKey string, buckets []RateBucket, want int) (int, time.Duration, error) {
	n := len(buckets)
	eps, rates, bursts, recs := make([]string, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, b := range buckets {
		eps[i], rates[i], bursts[i], recs[i] = b.Endpoint, b.Rate, b.Burst, b.Recovery
	}
	var (
		got  int
		wait *float64
	)
	err := s.pool.QueryRow(ctx, takeRateTokens, brandKey, eps, rates, bursts, recs, max(want, 1)).Scan(&got, &wait, new(int64))
	if err != nil {
		return 0, 0, mapErr("take rate tokens", err)
	}
	w := 0.0
	if wait != nil && !math.IsNaN(*wait) {
		w = *wait
	}
	return got, time.Duration(max(w, 0.001) * float64(time.Second)), nil
}

// EnsureRateBuckets creates a brand's buckets, full, unless they exist.
func (s *Store) EnsureRateBuckets(ctx context.Context, brandKey string, buckets []RateBucket) error {
	eps, bursts := make([]string, len(buckets)), make([]float64, len(buckets))
	for i, b := range buckets {
		eps[i], bursts[i] = b.Endpoint, b.Burst
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO rate_buckets (brand_key, endpoint, tokens)
		SELECT $1, e, b FROM unnest($2::text[], $3::double precision[]) AS t(e, b)
		ON CONFLICT DO NOTHING`, brandKey, eps, bursts)
	return mapErr("ensure rate buckets", err)
}

// throttleRateBuckets blocks the buckets until now + $3 s, spends their tokens
// and has them refill only from the end of the block, and halves their share
// of the rate (not below $4) unless the last halving is younger than $5 s.
const throttleRateBuckets = `WITH cfg AS (
		SELECT * FROM unnest($2::text[], $6::double precision[]) AS t(endpoint, recovery)
	)
	INSERT INTO rate_buckets AS r (brand_key, endpoint, tokens, updated_at, blocked_until, throttled, factor, factor_at)
	SELECT $1, endpoint, 0, clock_timestamp() + make_interval(secs => $3), clock_timestamp() + make_interval(secs => $3),
		1, greatest($4, 0.5), clock_timestamp()
	FROM cfg
	ON CONFLICT (brand_key, endpoint) DO UPDATE SET
		tokens = 0,
		blocked_until = greatest(r.blocked_until, excluded.blocked_until),
		updated_at = greatest(r.updated_at, r.blocked_until, excluded.blocked_until),
		throttled = r.throttled + 1,
		factor = CASE WHEN r.factor_at IS NULL OR r.factor_at <= clock_timestamp() - make_interval(secs => $5)
			THEN greatest($4, 0.5 * least(1, r.factor + (SELECT recovery FROM cfg WHERE cfg.endpoint = r.endpoint)
				* greatest(0, extract(epoch FROM clock_timestamp() - coalesce(r.factor_at, clock_timestamp())))))
			ELSE r.factor END,
		factor_at = CASE WHEN r.factor_at IS NULL OR r.factor_at <= clock_timestamp() - make_interval(secs => $5)
			THEN clock_timestamp() ELSE r.factor_at END`

// ThrottleRateBuckets records a 429 for a brand's buckets: every replica holds
// back its calls of them for th.Wait, their tokens are spent, and their rate
// is halved, to recover by each bucket's Recovery.
func (s *Store) ThrottleRateBuckets(ctx context.Context, brandKey string, buckets []RateBucket, th RateThrottle) error {
	eps, recs := make([]string, len(buckets)), make([]float64, len(buckets))
	for i, b := range buckets {
		eps[i], recs[i] = b.Endpoint, b.Recovery
	}
	_, err := s.pool.Exec(ctx, throttleRateBuckets, brandKey, eps, max(th.Wait, 0).Seconds(), th.Floor, th.Grace.Seconds(), recs)
	return mapErr("throttle rate buckets", err)
}

// RateBucketShare is the share of its rate a brand's bucket runs at now,
// given its Recovery (1 when it is not lowered).
func (s *Store) RateBucketShare(ctx context.Context, brandKey string, b RateBucket) (float64, error) {
	var f float64
	err := s.pool.QueryRow(ctx, `SELECT least(1, factor + $3 * greatest(0, extract(epoch FROM clock_timestamp() - coalesce(factor_at, clock_timestamp()))))
		FROM rate_buckets WHERE brand_key = $1 AND endpoint = $2`, brandKey, b.Endpoint, b.Recovery).Scan(&f)
	return f, mapErr("rate bucket share", err)
}
