package store

import "time"

// NewReadRouterInUse returns a router whose standby is usable as of now,
// without its checker (nothing else changes its state during a test).
func NewReadRouterInUse(primary, standby *Store, now time.Time) *ReadRouter {
	r := &ReadRouter{primary: primary, standby: standby, kick: make(chan struct{}, 1),
		opts: ReadRouterOptions{MaxLag: time.Minute, CheckEvery: time.Hour, Now: func() time.Time { return now }}}
	r.state.Store(&standbyState{ok: true, usable: true, checked: true, freshAsOf: now})
	return r
}

// CheckAsked says whether a check was asked for since the router was made.
func CheckAsked(r *ReadRouter) bool { return len(r.kick) > 0 }
