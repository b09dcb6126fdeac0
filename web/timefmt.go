package web

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // containers often lack /usr/share/zoneinfo; users' zones must still load

	"github.com/microapps/microapps/internal/words"
)

// TimeVM is a moment ready for a <time> element: machine-readable, absolute in
// the user's zone, and relative to now in words.
type TimeVM struct {
	Set bool
	ISO string // RFC 3339 in UTC, for datetime=
	Abs string // "12 Mar 2026, 14:05 CET"
	Rel string // "in 5 hours"
}

const tzCookie = "microapps_tz"

// zones caches loaded locations: a user's zone is looked up on every page.
type zones struct{ m sync.Map }

// userLocation reads the time zone the browser reported through the tz cookie
// (set by app.js), falling back to UTC.
func (z *zones) userLocation(r *http.Request) *time.Location {
	c, err := r.Cookie(tzCookie)
	if err != nil {
		return time.UTC
	}
	name, err := url.QueryUnescape(c.Value)
	if err != nil || name == "" || len(name) > 64 || strings.Contains(name, "..") || name == "Local" {
		return time.UTC
	}
	if loc, ok := z.m.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	z.m.Store(name, loc)
	return loc
}

// absTime formats t in loc: "12 Mar 2026, 14:05 CET" / "12 mars 2026, 14:05 CET",
// as emails and chat messages write it (internal/words).
func absTime(t time.Time, loc *time.Location, l Lang) string {
	return words.Date(t, loc, string(l), false)
}

// relTime says how far t is from now in words, rounding to the largest unit.
func relTime(t, now time.Time, l Lang) string {
	d := t.Sub(now)
	future := d >= 0
	if !future {
		d = -d
	}
	var unit string
	var n int
	switch {
	case d < time.Minute:
		return l.T("rel.now")
	case d < time.Hour:
		unit, n = "min", int(d/time.Minute)
	case d < 48*time.Hour:
		unit, n = "hour", int(d/time.Hour)
	default:
		unit, n = "day", int(d/(24*time.Hour))
	}
	dir := "ago"
	if future {
		dir = "in"
	}
	return l.T("rel."+dir+"."+unit, n)
}

func (s *Server) Time(t *time.Time, rc *Request) TimeVM {
	if t == nil || t.IsZero() {
		return TimeVM{}
	}
	return TimeVM{
		Set: true,
		ISO: t.UTC().Format(time.RFC3339),
		Abs: absTime(*t, rc.Loc, rc.Lang),
		Rel: relTime(*t, rc.Now, rc.Lang),
	}
}
