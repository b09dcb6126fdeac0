package microapps_test

import (
	"testing"
	"time"

	"github.com/microapps/microapps"
)

func TestSyncWindowContains(t *testing.T) {
	t.Parallel()
	paris := &microapps.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	night := &microapps.SyncWindow{Start: "22:00", End: "02:00", TimeZone: "Europe/Paris"}
	dstGap := &microapps.SyncWindow{Start: "02:00", End: "03:00", TimeZone: "Europe/Paris"}
	ny := &microapps.SyncWindow{Start: "01:00", End: "03:00", TimeZone: "America/New_York"}
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	cases := []struct {
		name string
		w    *microapps.SyncWindow
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
		{"start equal to end means all day", &microapps.SyncWindow{Start: "03:00", End: "03:00"}, utc("2025-07-10T15:00:00Z"), true},
		{"a window without a time zone is read in UTC", &microapps.SyncWindow{Start: "10:00", End: "11:00"}, utc("2025-07-10T10:15:00Z"), true},
		{"24:00 ends the day", &microapps.SyncWindow{Start: "23:00", End: "24:00"}, utc("2025-07-10T23:59:00Z"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.w.Contains(tc.at)
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
		for _, w := range []*microapps.SyncWindow{{Start: "25:00", End: "01:00"}, {Start: "1:0", End: "02:00"}, {Start: "01:00", End: "02:00", TimeZone: "Mars/Olympus"}} {
			if _, err := w.Contains(time.Now()); err == nil {
				t.Errorf("InWindow(%+v) accepted", w)
			}
		}
	})
}

func TestSyncWindowNextOpen(t *testing.T) {
	t.Parallel()
	paris, _ := time.LoadLocation("Europe/Paris")
	ny, _ := time.LoadLocation("America/New_York")
	night := &microapps.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	late := &microapps.SyncWindow{Start: "22:00", End: "02:00", TimeZone: "America/New_York"}
	for _, tc := range []struct {
		name string
		w    *microapps.SyncWindow
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
			if got := tc.w.NextOpen(tc.at); !got.Equal(tc.want) {
				t.Fatalf("NextInWindow(%v) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}
