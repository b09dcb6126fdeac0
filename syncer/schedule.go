package syncer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/microapps/microapps/store"
)

// DueKind says which sync an integration needs at now, if any:
//   - none unless its status is active (paused and error are skipped);
//   - a full one at once while it has never had a successful full sync, window
//     or not (a new integration is synced straight away; after a failure, when
//     its retry time comes);
//   - a full one when next_full_sync_at has come and now is inside its full
//     sync window (when it has one);
//   - otherwise an incremental one when next_incremental_sync_at has come.
//
// An invalid window does not block syncs: it is treated as no window.
func DueKind(in store.Integration, now time.Time) (string, bool) {
	if in.Status != "active" {
		return "", false
	}
	due := func(t *time.Time) bool { return t == nil || !t.After(now) }
	if in.FirstFullSyncAt == nil {
		return KindFull, due(in.NextFullSyncAt)
	}
	if due(in.NextFullSyncAt) {
		inside, err := InWindow(in.FullSyncWindow, now)
		if inside || err != nil {
			return KindFull, true
		}
	}
	if due(in.NextIncrementalSyncAt) {
		return KindIncremental, true
	}
	return "", false
}

// InWindow reports whether t falls inside the daily window w, read on the
// wall clock of the window's time zone: [start, end), across midnight when end
// is not after start ("22:00"–"02:00"), all day when start equals end. Being
// wall-clock arithmetic it follows DST: a window of 00:00–04:00 in
// Europe/Paris is four hours on most days, three on the day clocks go
// forward (02:00–03:00 does not exist) and five when they go back. A nil
// window is always open.
func InWindow(w *store.SyncWindow, t time.Time) (bool, error) {
	if w == nil {
		return true, nil
	}
	start, err := clockMinutes(w.Start)
	if err != nil {
		return false, fmt.Errorf("full sync window start: %w", err)
	}
	end, err := clockMinutes(w.End)
	if err != nil {
		return false, fmt.Errorf("full sync window end: %w", err)
	}
	loc := time.UTC
	if w.TimeZone != "" {
		if loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return false, fmt.Errorf("full sync window time zone: %w", err)
		}
	}
	local := t.In(loc)
	m := local.Hour()*60 + local.Minute()
	switch {
	case start == end:
		return true, nil
	case start < end:
		return start <= m && m < end, nil
	default: // across midnight
		return m >= start || m < end, nil
	}
}

// clockMinutes parses "HH:MM" (24 h; "24:00" is the end of the day).
func clockMinutes(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return hh*60 + mm, nil
}

// NextInWindow is the earliest time at or after t inside the window w: t
// itself when the window is open then (or when w is nil or invalid), else the
// window's next start on the zone's wall clock. On a day when DST skips the
// start time, the start falls where time.Date puts it, which is inside the
// window or the next day's start is used.
func NextInWindow(w *store.SyncWindow, t time.Time) time.Time {
	inside, err := InWindow(w, t)
	if inside || err != nil {
		return t
	}
	start, _ := clockMinutes(w.Start)
	loc := time.UTC
	if w.TimeZone != "" {
		loc, _ = time.LoadLocation(w.TimeZone)
	}
	local := t.In(loc)
	for day := 0; day <= 2; day++ {
		c := time.Date(local.Year(), local.Month(), local.Day()+day, start/60, start%60, 0, 0, loc)
		if c.Before(t) {
			continue
		}
		if ok, _ := InWindow(w, c); ok {
			return c
		}
	}
	return t
}
