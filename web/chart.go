package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/microapps/microapps/store"
)

// ChartVM is an inline SVG line chart of opened, started and finished over
// time. Coordinates are computed here so the template stays declarative and
// no inline style is needed (the CSP forbids it).
type ChartVM struct {
	Width, Height int
	Series        []SeriesVM
	YMax          int
	YMaxLabel     string
	From, To      TimeVM
	Left, Bottom  int
	PlotRight     int
	PlotTop       int
}

// SeriesVM is one line.
type SeriesVM struct {
	Key    string
	Label  string
	Points string // "x,y x,y …"
	Last   int
}

func (c ChartVM) HasData() bool { return len(c.Series) > 0 }

func buildChart(h []store.StatsSnapshot, rc *Request) ChartVM {
	c := ChartVM{Width: 640, Height: 240, Left: 48, Bottom: 208, PlotRight: 628, PlotTop: 12}
	if len(h) < 2 {
		return c
	}
	first, last := h[0].At, h[len(h)-1].At
	span := last.Sub(first)
	if span <= 0 {
		span = time.Second
	}
	ymax := 1
	for _, p := range h {
		ymax = max(ymax, p.Opened, p.Started, p.Finished)
	}
	c.YMax = ymax
	c.YMaxLabel = strconv.Itoa(ymax)
	from, to := first, last
	c.From, c.To = TimeAt(from, rc), TimeAt(to, rc)
	w := float64(c.PlotRight - c.Left)
	ht := float64(c.Bottom - c.PlotTop)
	series := []struct {
		key string
		get func(store.StatsSnapshot) int
	}{
		{"opened", func(s store.StatsSnapshot) int { return s.Opened }},
		{"started", func(s store.StatsSnapshot) int { return s.Started }},
		{"finished", func(s store.StatsSnapshot) int { return s.Finished }},
	}
	for _, s := range series {
		var b strings.Builder
		for i, p := range h {
			x := float64(c.Left) + w*float64(p.At.Sub(first))/float64(span)
			y := float64(c.Bottom) - ht*float64(s.get(p))/float64(ymax)
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
		}
		c.Series = append(c.Series, SeriesVM{Key: s.key, Label: rc.Lang.T("stat." + s.key), Points: b.String(), Last: s.get(h[len(h)-1])})
	}
	return c
}

func TimeAt(t time.Time, rc *Request) TimeVM {
	return TimeVM{Set: true, ISO: t.UTC().Format(time.RFC3339), Abs: absTime(t, rc.Loc, rc.Lang), Rel: relTime(t, rc.Now, rc.Lang)}
}
