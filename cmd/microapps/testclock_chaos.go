//go:build chaos

package main

import "time"

// testClock, in the binary the chaos test builds with -tags chaos, runs the
// replica's clock ahead by MICROAPPS_CHAOS_CLOCK_OFFSET (a Go duration): one
// replica of three then writes and judges times a few seconds in the
// future, as a host whose NTP drifted does. Go ignores libfaketime.
func testClock(getenv func(string) string) func() time.Time {
	d, err := time.ParseDuration(getenv("MICROAPPS_CHAOS_CLOCK_OFFSET"))
	if err != nil || d == 0 {
		return nil
	}
	return func() time.Time { return time.Now().Add(d) }
}

const chaosBuild = true
