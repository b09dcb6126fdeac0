// Package budget keeps token-bucket budgets by key (an integration, a
// source address, both), for the endpoints anyone can call many times: the
// event callbacks and the admin API's wrong tokens. The number of budgets is
// bounded, so a flood of made-up keys resets them rather than growing memory.
package budget

import (
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// maxKeys bounds the budgets a Set keeps; past it the set starts afresh.
const maxKeys = 10000

// Set is one budget (rate and burst) per key. The zero value is not usable:
// make one with New. It is safe for concurrent use.
type Set struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// New returns a Set whose budgets refill at r per second up to burst.
func New(r rate.Limit, burst int) *Set {
	return &Set{rate: r, burst: burst, m: map[string]*rate.Limiter{}}
}

// Of returns key's budget, made full the first time.
func (s *Set) Of(key string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[key]
	if l == nil {
		if len(s.m) >= maxKeys {
			clear(s.m)
		}
		l = rate.NewLimiter(s.rate, s.burst)
		s.m[key] = l
	}
	return l
}

// Empty says whether key's budget has no token left, without spending one
// (a key never seen has a full budget).
func (s *Set) Empty(key string) bool {
	s.mu.Lock()
	l := s.m[key]
	s.mu.Unlock()
	return l != nil && l.Tokens() < 1
}

// Source is the source a budget is kept for, from an http.Request's
// RemoteAddr: the peer's IPv4 address, or its IPv6 /64 (one host commonly
// holds a whole /64, so a single address would be no bound at all).
func Source(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return "?"
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
