//go:build !chaos

package main

import "time"

// testClock is the replica's clock: nil (time.Now) in every binary but the
// chaos test's (testclock_chaos.go), so the offset it reads is no part of
// serve's surface.
func testClock(func(string) string) func() time.Time { return nil }

const chaosBuild = false
