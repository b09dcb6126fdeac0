package microapps

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FieldError is one invalid field of a change, named as the admin API's JSON
// names it ("schedule.fullSyncEvery"); each front end words it its own way.
type FieldError struct {
	Field   string
	Message string
}

// Schedule is when an integration syncs. A zero period means its default.
type Schedule struct {
	FullSyncEvery        time.Duration
	IncrementalSyncEvery time.Duration
	// VerifyEvery is how often full syncs re-read every live distribution's
	// history and links even when nothing moved.
	VerifyEvery time.Duration
	// FullSyncWindow, when set, restricts full syncs to a daily window.
	FullSyncWindow *SyncWindow
}

// DefaultSchedule is the schedule of an integration that does not say.
var DefaultSchedule = Schedule{FullSyncEvery: time.Hour, IncrementalSyncEvery: 15 * time.Minute, VerifyEvery: 24 * time.Hour}

// The schedule's limits.
const (
	MinFullSyncEvery        = 5 * time.Minute
	MaxFullSyncEvery        = 7 * 24 * time.Hour
	MinIncrementalSyncEvery = time.Minute
	MinVerifyEvery          = time.Hour
	MaxVerifyEvery          = 30 * 24 * time.Hour
)

// Effective is s with each period it leaves at zero set to its default.
func (s Schedule) Effective() Schedule {
	if s.FullSyncEvery <= 0 {
		s.FullSyncEvery = DefaultSchedule.FullSyncEvery
	}
	if s.IncrementalSyncEvery <= 0 {
		s.IncrementalSyncEvery = DefaultSchedule.IncrementalSyncEvery
	}
	if s.VerifyEvery <= 0 {
		s.VerifyEvery = DefaultSchedule.VerifyEvery
	}
	return s
}

// Validate checks each period's limits, then how they relate: an
// incremental sync more often than a full one, a verification no more often.
func (s Schedule) Validate() []FieldError {
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{Field: "schedule." + field, Message: msg}) }
	switch {
	case s.FullSyncEvery < MinFullSyncEvery:
		bad("fullSyncEvery", "must be at least "+FormatDuration(MinFullSyncEvery))
	case s.FullSyncEvery > MaxFullSyncEvery:
		bad("fullSyncEvery", "must be at most "+FormatDuration(MaxFullSyncEvery)+" (a week)")
	}
	if s.IncrementalSyncEvery < MinIncrementalSyncEvery {
		bad("incrementalSyncEvery", "must be at least "+FormatDuration(MinIncrementalSyncEvery))
	}
	switch {
	case s.VerifyEvery < MinVerifyEvery:
		bad("verifyEvery", "must be at least "+FormatDuration(MinVerifyEvery))
	case s.VerifyEvery > MaxVerifyEvery:
		bad("verifyEvery", "must be at most "+FormatDuration(MaxVerifyEvery)+" (30 days)")
	}
	if s.FullSyncWindow != nil {
		errs = append(errs, s.FullSyncWindow.Validate()...)
	}
	if len(errs) > 0 {
		return errs
	}
	if s.IncrementalSyncEvery >= s.FullSyncEvery {
		bad("incrementalSyncEvery", fmt.Sprintf("must be shorter than fullSyncEvery (%s)", FormatDuration(s.FullSyncEvery)))
	} else if s.VerifyEvery < s.FullSyncEvery {
		bad("verifyEvery", fmt.Sprintf("must be at least fullSyncEvery (%s)", FormatDuration(s.FullSyncEvery)))
	}
	return errs
}

// NextSync is the sync an integration will run next, from its next full
// and incremental times: incremental syncs only follow a first full one.
func NextSync(nextFull, nextIncremental *time.Time, firstFullDone bool) (*time.Time, SyncKind) {
	if n := nextIncremental; n != nil && firstFullDone && (nextFull == nil || n.Before(*nextFull)) {
		return n, SyncIncremental
	}
	return nextFull, SyncFull
}

// FormatDuration writes durations the way people type them: "1h", "15m", "1h30m".
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	s := d.String()
	for _, suffix := range []struct{ long, short string }{{"m0s", "m"}, {"h0m", "h"}} {
		if len(s) > len(suffix.long) && s[len(s)-len(suffix.long):] == suffix.long {
			s = s[:len(s)-len(suffix.long)] + suffix.short
		}
	}
	return s
}

// SyncWindow restricts full syncs to a daily time window in a time zone.
// Its JSON is how it is stored.
type SyncWindow struct {
	Start    string `json:"start"` // "00:00"
	End      string `json:"end"`   // "04:00"
	TimeZone string `json:"timeZone"`
}

// Validate checks the window as an admin gives it: two different times of
// day "HH:MM" and an IANA time zone.
func (w SyncWindow) Validate() []FieldError {
	var errs []FieldError
	bad := func(field, msg string) {
		errs = append(errs, FieldError{Field: "schedule.fullSyncWindow." + field, Message: msg})
	}
	clock := func(s string) bool {
		t, err := time.Parse("15:04", s)
		return err == nil && t.Format("15:04") == s
	}
	if !clock(w.Start) {
		bad("start", `must be a time of day "HH:MM" (24 h)`)
	}
	if !clock(w.End) {
		bad("end", `must be a time of day "HH:MM" (24 h)`)
	}
	if w.Start == w.End && clock(w.Start) {
		bad("end", "must differ from start")
	}
	if w.TimeZone == "" || strings.EqualFold(w.TimeZone, "local") {
		bad("timeZone", `must be an IANA time zone such as "Europe/Paris" or "UTC"`)
	} else if _, err := time.LoadLocation(w.TimeZone); err != nil {
		bad("timeZone", fmt.Sprintf("%q is not a known IANA time zone", w.TimeZone))
	}
	return errs
}

// Contains reports whether t falls inside the daily window w, read on the
// wall clock of the window's time zone: [start, end), across midnight when end
// is not after start ("22:00"–"02:00"), all day when start equals end. Being
// wall-clock arithmetic it follows DST: a window of 00:00–04:00 in
// Europe/Paris is four hours on most days, three on the day clocks go
// forward (02:00–03:00 does not exist) and five when they go back. A nil
// window is always open.
func (w *SyncWindow) Contains(t time.Time) (bool, error) {
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

// NextOpen is the earliest time at or after t inside the window w: t itself
// when the window is open then (or when w is nil or invalid), else the
// window's next start on the zone's wall clock. On a day when DST skips the
// start time, the start falls where time.Date puts it, which is inside the
// window or the next day's start is used.
func (w *SyncWindow) NextOpen(t time.Time) time.Time {
	inside, err := w.Contains(t)
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
		if ok, _ := w.Contains(c); ok {
			return c
		}
	}
	return t
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

// VetoRule holds back a run that would remove more than MaxDeletePercent of
// the integration's live rows of a kind (surveys, distributions, recipients)
// and more than MinRows of them. MaxDeletePercent 100 never vetoes.
type VetoRule struct {
	MaxDeletePercent int
	MinRows          int
}

// DefaultVetoRule is the rule of an integration that does not say.
var DefaultVetoRule = VetoRule{MaxDeletePercent: 50, MinRows: 10}

// ParseEvery reads one of the schedule's periods as people type it ("1h",
// "90m"); field is its name in the schedule ("fullSyncEvery").
func ParseEvery(field, raw string) (time.Duration, *FieldError) {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		example := map[string]string{"fullSyncEvery": `"1h" or "90m"`, "incrementalSyncEvery": `"15m"`}[field]
		if example == "" {
			example = `"24h"`
		}
		return 0, &FieldError{Field: "schedule." + field, Message: "must be a duration such as " + example}
	}
	return d, nil
}
