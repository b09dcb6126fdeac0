package syncer

import (
	"fmt"

	"github.com/microapps/microapps/qualtrics"
)

// MalformedMetrics is implemented by a Metrics that also counts the values
// Qualtrics sent that could not be read (the replica's does).
type MalformedMetrics interface {
	ObserveMalformedValues(endpoint string, n int)
}

// noteDecodeWarnings takes what the run's client read leniently (dates that
// were no date, taken as none) and turns it into one run warning, with one
// example that shows where and in what shape but not the value, and the
// metric. Call it once per run, where the run takes the client's stats
// (before the run is recorded): noteDecodeWarnings(rs.client, rs.s.metrics, rs.warn).
func noteDecodeWarnings(c *qualtrics.Client, m Metrics, warn func(format string, args ...any)) {
	if c == nil {
		return
	}
	w := c.TakeDecodeWarnings()
	if w.Count() == 0 {
		return
	}
	if mm, ok := m.(MalformedMetrics); ok {
		for endpoint, n := range w.MalformedDates {
			mm.ObserveMalformedValues(endpoint, n)
		}
	}
	warn("%s", DecodeWarning(w))
}

// DecodeWarning is the run warning for values that could not be read.
func DecodeWarning(w qualtrics.DecodeWarnings) string {
	n := w.Count()
	what := "date values"
	if n == 1 {
		what = "date value"
	}
	return fmt.Sprintf("%d %s from Qualtrics could not be read and were taken as no date (an expiry keeps the one read "+
		"before, else falls back to the distribution's, then the survey's end date), e.g. %s %s: %s",
		n, what, w.Example.Endpoint, w.Example.Field, w.Example.Shape)
}
