package syncer_test

import (
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

func TestInWindow(t *testing.T) {
	t.Parallel()
	paris := &store.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	night := &store.SyncWindow{Start: "22:00", End: "02:00", TimeZone: "Europe/Paris"}
	dstGap := &store.SyncWindow{Start: "02:00", End: "03:00", TimeZone: "Europe/Paris"}
	ny := &store.SyncWindow{Start: "01:00", End: "03:00", TimeZone: "America/New_York"}
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	cases := []struct {
		name string
		w    *store.SyncWindow
		at   time.Time
		want bool
	}{
		{"no window is always open", nil, utc("2025-06-01T12:00:00Z"), true},
		{"01:00 Paris in summer (23:00 UTC the day before) is inside 00:00–04:00", paris, utc("2025-05-31T23:00:00Z"), true},
		{"04:00 Paris is the end, outside", paris, utc("2025-06-01T02:00:00Z"), false},
		{"03:59 Paris is inside", paris, utc("2025-06-01T01:59:00Z"), true},
		{"noon Paris is outside", paris, utc("2025-06-01T10:00:00Z"), false},
		{"00:30 Paris in winter (23:30 UTC) is inside", paris, utc("2025-01-14T23:30:00Z"), true},
		{"03:30 Paris in winter (02:30 UTC) is inside", paris, utc("2025-01-15T02:30:00Z"), true},
		{"03:30 UTC in winter is 04:30 Paris, outside", paris, utc("2025-01-15T03:30:00Z"), false},
		{"a window across midnight is open before midnight", night, utc("2025-06-01T20:30:00Z"), true},
		{"a window across midnight is open after midnight", night, utc("2025-06-01T23:30:00Z"), true},
		{"a window across midnight is closed at its end", night, utc("2025-06-02T00:00:00Z"), false},
		{"a window across midnight is closed at noon", night, utc("2025-06-01T10:00:00Z"), false},
		{"on the day clocks go forward, 01:59 UTC+1 is before the gap", dstGap, utc("2025-03-30T00:59:00Z"), false},
		{"on the day clocks go forward, the instant after 01:59 is 03:00 UTC+2, past a 02:00–03:00 window", dstGap, utc("2025-03-30T01:00:00Z"), false},
		{"on the day clocks go back, 02:30 happens twice and both are inside (first, UTC+2)", dstGap, utc("2025-10-26T00:30:00Z"), true},
		{"on the day clocks go back, 02:30 happens twice and both are inside (second, UTC+1)", dstGap, utc("2025-10-26T01:30:00Z"), true},
		{"New York 01:30 EST is 06:30 UTC", ny, utc("2025-01-10T06:30:00Z"), true},
		{"New York 01:30 EDT is 05:30 UTC", ny, utc("2025-07-10T05:30:00Z"), true},
		{"start equal to end means all day", &store.SyncWindow{Start: "03:00", End: "03:00"}, utc("2025-07-10T15:00:00Z"), true},
		{"a window without a time zone is read in UTC", &store.SyncWindow{Start: "10:00", End: "11:00"}, utc("2025-07-10T10:15:00Z"), true},
		{"24:00 ends the day", &store.SyncWindow{Start: "23:00", End: "24:00"}, utc("2025-07-10T23:59:00Z"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := syncer.InWindow(tc.w, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("InWindow(%+v, %s) = %v, want %v", tc.w, tc.at, got, tc.want)
			}
		})
	}
	t.Run("a malformed window is an error", func(t *testing.T) {
		t.Parallel()
		for _, w := range []*store.SyncWindow{{Start: "25:00", End: "01:00"}, {Start: "1:0", End: "02:00"}, {Start: "01:00", End: "02:00", TimeZone: "Mars/Olympus"}} {
			if _, err := syncer.InWindow(w, time.Now()); err == nil {
				t.Errorf("InWindow(%+v) accepted", w)
			}
		}
	})
}

func TestDueKind(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // 14:00 in Paris
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	outside := &store.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	inside := &store.SyncWindow{Start: "13:00", End: "15:00", TimeZone: "Europe/Paris"}
	cases := []struct {
		name     string
		in       store.Integration
		wantKind string
		wantDue  bool
	}{
		{"a new integration gets a full sync at once", store.Integration{Status: "active"}, syncer.KindFull, true},
		{"a new integration gets its first full sync even outside its window", store.Integration{Status: "active", FullSyncWindow: outside}, syncer.KindFull, true},
		{"no incremental before the first successful full sync", store.Integration{Status: "active", NextFullSyncAt: &future, NextIncrementalSyncAt: &past}, syncer.KindFull, false},
		{"a paused integration is skipped", store.Integration{Status: "paused"}, "", false},
		{"an integration in error is skipped", store.Integration{Status: "error", FirstFullSyncAt: &past, NextIncrementalSyncAt: &past}, "", false},
		{"a due full sync runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, NextIncrementalSyncAt: &past}, syncer.KindFull, true},
		{"a due full sync waits for its window, an incremental runs meanwhile", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, NextIncrementalSyncAt: &past, FullSyncWindow: outside}, syncer.KindIncremental, true},
		{"a due full sync inside its window runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, FullSyncWindow: inside, NextIncrementalSyncAt: &future}, syncer.KindFull, true},
		{"a due incremental runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &future, NextIncrementalSyncAt: &past}, syncer.KindIncremental, true},
		{"nothing is due", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &future, NextIncrementalSyncAt: &future}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, due := syncer.DueKind(tc.in, now)
			if due != tc.wantDue || (due && kind != tc.wantKind) {
				t.Errorf("DueKind = %q, %v; want %q, %v", kind, due, tc.wantKind, tc.wantDue)
			}
		})
	}
}

func TestNextInWindow(t *testing.T) {
	t.Parallel()
	paris, _ := time.LoadLocation("Europe/Paris")
	ny, _ := time.LoadLocation("America/New_York")
	night := &store.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	late := &store.SyncWindow{Start: "22:00", End: "02:00", TimeZone: "America/New_York"}
	for _, tc := range []struct {
		name string
		w    *store.SyncWindow
		at   time.Time
		want time.Time
	}{
		{"no window means now", nil, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)},
		{"inside the window means now", night, time.Date(2026, 6, 1, 1, 30, 0, 0, paris), time.Date(2026, 6, 1, 1, 30, 0, 0, paris)},
		{"after the window means tomorrow's start", night, time.Date(2026, 6, 1, 9, 0, 0, 0, paris), time.Date(2026, 6, 2, 0, 0, 0, 0, paris)},
		{"a window across midnight opens the same evening", late, time.Date(2026, 6, 1, 15, 0, 0, 0, ny), time.Date(2026, 6, 1, 22, 0, 0, 0, ny)},
		{"the window start is read in its own zone", night, time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 22, 0, 0, 0, time.UTC)},
		{"spring forward keeps the midnight start", night, time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 0, 0, 0, 0, paris)},
		{"fall back keeps the midnight start", night, time.Date(2026, 10, 24, 12, 0, 0, 0, paris), time.Date(2026, 10, 25, 0, 0, 0, 0, paris)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := syncer.NextInWindow(tc.w, tc.at); !got.Equal(tc.want) {
				t.Fatalf("NextInWindow(%v) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}
