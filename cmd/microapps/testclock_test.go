package main

import (
	"testing"
	"time"
)

// The clock offset of the chaos run exists only in a binary built with
// -tags chaos: serve as shipped ignores the variable.
func TestTheClockOffsetIsReadOnlyByTheChaosBuild(t *testing.T) {
	now := testClock(func(name string) string {
		if name == "MICROAPPS_CHAOS_CLOCK_OFFSET" {
			return "90s"
		}
		return ""
	})
	if chaosBuild {
		if now == nil || now().Sub(time.Now()) < 89*time.Second {
			t.Fatalf("the chaos build ignores MICROAPPS_CHAOS_CLOCK_OFFSET=90s")
		}
		return
	}
	if now != nil {
		t.Fatalf("serve reads MICROAPPS_CHAOS_CLOCK_OFFSET: %v ahead", now().Sub(time.Now()))
	}
}
