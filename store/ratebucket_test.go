package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// tokensIn takes tokens as fast as the buckets hand them out for d, from the
// first one on, and says how many it got.
func tokensIn(t *testing.T, s *store.Store, key string, b []store.RateBucket, d time.Duration) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	var first time.Time
	for first.IsZero() || time.Since(first) < d {
		got, wait, err := s.TakeRateTokens(ctx, key, b, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			n += got
			continue
		}
		time.Sleep(min(wait, 5*time.Millisecond))
	}
	return n
}

// TestNoBurstAfterA429 drains a bucket of 20 tokens a second, records a 429
// that blocks it for 300 ms (a 429 without Retry-After), and counts the
// tokens of the second after the block: at most the lowered rate, no burst
// of what the bucket refilled while blocked.
func TestNoBurstAfterA429(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	b := []store.RateBucket{{Endpoint: "*", Rate: 20, Burst: 10}}
	if err := s.EnsureRateBuckets(ctx, "brand:b1", b); err != nil {
		t.Fatal(err)
	}
	tokensIn(t, s, "brand:b1", b, 200*time.Millisecond) // drain the burst
	if err := s.ThrottleRateBuckets(ctx, "brand:b1", b, store.RateThrottle{Wait: 300 * time.Millisecond, Floor: 0.1, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := tokensIn(t, s, "brand:b1", b, time.Second); n > 11 {
		t.Errorf("%d tokens in the second after a 429; want at most 11 (half of 20/s, no burst)", n)
	}
}

// TestA429HalvesTheRateOnceAndItRecovers: a 429 halves a bucket's share of
// its rate for every replica, the 429s of calls already in flight (within
// the grace) do not halve it again, a later one does, and the share comes
// back by the bucket's recovery.
func TestA429HalvesTheRateOnceAndItRecovers(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	b := store.RateBucket{Endpoint: "*", Rate: 20, Burst: 10, Recovery: 0.5}
	if err := s.EnsureRateBuckets(ctx, "brand:b2", []store.RateBucket{b}); err != nil {
		t.Fatal(err)
	}
	share := func() float64 {
		t.Helper()
		f, err := s.RateBucketShare(ctx, "brand:b2", store.RateBucket{Endpoint: "*"}) // no recovery: the stored share
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	th := store.RateThrottle{Floor: 0.2, Grace: 500 * time.Millisecond}
	throttle := func() {
		t.Helper()
		if err := s.ThrottleRateBuckets(ctx, "brand:b2", []store.RateBucket{b}, th); err != nil {
			t.Fatal(err)
		}
	}
	throttleNoRecovery := func() {
		t.Helper()
		if err := s.ThrottleRateBuckets(ctx, "brand:b2", []store.RateBucket{{Endpoint: "*"}}, th); err != nil {
			t.Fatal(err)
		}
	}
	if f := share(); f != 1 {
		t.Fatalf("a new bucket runs at %v of its rate", f)
	}
	throttle()
	throttle() // in flight with the first
	if f := share(); f != 0.5 {
		t.Fatalf("after two 429s within the grace: %v of the rate, want 0.5", f)
	}
	time.Sleep(600 * time.Millisecond)
	throttle() // a new overrun: halves what had recovered (0.5 + 0.5 × 0.6 s)
	if f := share(); f < 0.38 || f > 0.45 {
		t.Fatalf("after a later 429: %v of the rate, want about 0.4", f)
	}
	for range 2 {
		time.Sleep(600 * time.Millisecond)
		throttleNoRecovery()
	}
	if f := share(); f != 0.2 {
		t.Fatalf("after many 429s: %v of the rate, want the floor 0.2", f)
	}
	time.Sleep(time.Second)
	f, err := s.RateBucketShare(ctx, "brand:b2", b)
	if err != nil {
		t.Fatal(err)
	}
	if f < 0.65 || f > 0.85 {
		t.Fatalf("a second without a 429 brought the share to %v, want about 0.7", f)
	}
}

// TestTakeRateTokensGrantsSeveral: one statement takes as many tokens as the
// poller has callers, up to what every bucket holds, and says how long until
// the next one.
func TestTakeRateTokensGrantsSeveral(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	b := []store.RateBucket{{Endpoint: "*", Rate: 100, Burst: 50}, {Endpoint: "h", Rate: 2, Burst: 4}}
	if err := s.EnsureRateBuckets(ctx, "brand:b3", b); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.TakeRateTokens(ctx, "brand:b3", b, 10)
	if err != nil || got != 4 {
		t.Fatalf("took %d tokens (%v), want the 4 of the smaller bucket", got, err)
	}
	got, wait, err := s.TakeRateTokens(ctx, "brand:b3", b, 10)
	if err != nil || got != 0 {
		t.Fatalf("took %d tokens (%v) from an empty bucket", got, err)
	}
	if wait < 400*time.Millisecond || wait > 510*time.Millisecond {
		t.Fatalf("wait %v for a bucket of 2/s, want about 500ms", wait)
	}
	got, _, err = s.TakeRateTokens(ctx, "brand:b3", b[:1], 10)
	if err != nil || got != 10 {
		t.Fatalf("took %d tokens of the brand alone (%v), want 10", got, err)
	}
}
