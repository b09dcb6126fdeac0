package store

import (
	"context"
	"math"
	"time"
)

// RateBucket is one token bucket of a brand: Endpoint "*" is the brand's whole
// budget, others an endpoint's own cap. Rate is in tokens per second.
type RateBucket struct {
	Endpoint string
	Rate     float64
	Burst    float64
}

// TakeRateTokens takes one token from each of the brand's buckets, all or
// none, atomically across replicas (the rows are locked in endpoint order).
// When a bucket is empty or blocked after a 429 it takes nothing and says how
// long to wait. Time is the database's clock, the one clock every replica
// shares. EnsureRateBuckets must have created the buckets.
func (s *Store) TakeRateTokens(ctx context.Context, brandKey string, buckets []RateBucket) (bool, time.Duration, error) {
	n := len(buckets)
	eps, rates, bursts := make([]string, n), make([]float64, n), make([]float64, n)
	for i, b := range buckets {
		eps[i], rates[i], bursts[i] = b.Endpoint, b.Rate, b.Burst
	}
	var (
		ok   bool
		wait float64
	)
	err := s.pool.QueryRow(ctx, `WITH cfg AS (
			SELECT * FROM unnest($2::text[], $3::double precision[], $4::double precision[]) AS t(endpoint, rate, burst)
		), locked AS (
			SELECT r.endpoint, r.tokens, r.updated_at, r.blocked_until FROM rate_buckets r
			WHERE r.brand_key = $1 AND r.endpoint = ANY($2) ORDER BY r.endpoint FOR UPDATE
		), cur AS (
			SELECT l.endpoint, c.rate, l.blocked_until,
				least(c.burst, l.tokens + greatest(0, extract(epoch FROM clock_timestamp() - l.updated_at)) * c.rate) AS avail
			FROM locked l JOIN cfg c USING (endpoint)
		), verdict AS (
			SELECT bool_and(avail >= 1 AND (blocked_until IS NULL OR blocked_until <= clock_timestamp())) AS ok,
				max(greatest((1 - avail) / nullif(rate, 0),
					extract(epoch FROM coalesce(blocked_until, clock_timestamp()) - clock_timestamp()))) AS wait
			FROM cur
		), upd AS (
			UPDATE rate_buckets r SET tokens = cur.avail - 1, updated_at = clock_timestamp()
			FROM cur, verdict WHERE verdict.ok AND r.brand_key = $1 AND r.endpoint = cur.endpoint
			RETURNING 1
		)
		SELECT coalesce(verdict.ok, false), coalesce(verdict.wait, 0), (SELECT count(*) FROM upd) FROM verdict`,
		brandKey, eps, rates, bursts).Scan(&ok, &wait, new(int64))
	if err != nil {
		return false, 0, mapErr("take rate tokens", err)
	}
	if ok {
		return true, 0, nil
	}
	if math.IsNaN(wait) || wait < 0.001 {
		wait = 0.001
	}
	return false, time.Duration(wait * float64(time.Second)), nil
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

// ThrottleRateBucket records a 429 for a brand's bucket: every replica holds
// back its calls of that bucket for wait, and its tokens are spent.
func (s *Store) ThrottleRateBucket(ctx context.Context, brandKey, endpoint string, wait time.Duration) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO rate_buckets AS r (brand_key, endpoint, tokens, blocked_until, throttled)
		VALUES ($1, $2, 0, clock_timestamp() + make_interval(secs => $3), 1)
		ON CONFLICT (brand_key, endpoint) DO UPDATE SET tokens = 0, updated_at = clock_timestamp(),
			blocked_until = greatest(r.blocked_until, excluded.blocked_until), throttled = r.throttled + 1`,
		brandKey, endpoint, wait.Seconds())
	return mapErr("throttle rate bucket", err)
}
