package qualtricssim

import (
	"testing"
	"time"
)

func TestTheMoverChangesTheTruthTheSameWayForASeed(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	emails := []string{"ann@example.com", "bob@example.com", "cy@example.com", "di@example.com", "ed@example.com"}
	run := func() ([]Change, *Server) {
		b := Generate(3, Spec{Surveys: 2, Recipients: 20, Now: start})
		s := New(Options{Brands: []*Brand{b}, Seed: 3, Now: func() time.Time { return start }})
		m := NewMover(s, 9, emails)
		var out []Change
		for i := range 200 {
			c, err := m.Step(start.Add(time.Duration(i) * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			c.Events = nil
			out = append(out, c)
		}
		return out, s
	}
	a, s := run()
	b, _ := run()
	kinds := map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d differs between two runs of one seed: %+v and %+v", i, a[i], b[i])
		}
		kinds[a[i].Kind]++
	}
	for _, k := range []string{"survey", "status", "close", "expire"} {
		if kinds[k] == 0 {
			t.Errorf("no %q step in 200: %v", k, kinds)
		}
	}
	// Every step is in the ground truth.
	last := map[string]string{}
	for _, c := range a {
		switch c.Kind {
		case "status":
			last[c.DistributionID+"/"+c.ContactID] = c.Status
		case "close":
			if sv, _ := s.Survey(c.SurveyID); sv.IsActive {
				t.Errorf("survey %s closed by the mover is still active", c.SurveyID)
			}
		case "expire":
			d, _ := s.Distribution(c.DistributionID)
			if !d.LinkExpiration.Equal(c.Expiry) {
				t.Errorf("distribution %s expires %v, the mover set %v", c.DistributionID, d.LinkExpiration, c.Expiry)
			}
			for _, rc := range s.Recipients(c.DistributionID) {
				if !rc.LinkExpiration.Equal(c.Expiry) {
					t.Errorf("recipient %s of %s expires %v, the mover set %v", rc.ContactID, c.DistributionID, rc.LinkExpiration, c.Expiry)
				}
			}
		}
	}
	for key, status := range last {
		dist, contact := key[:len("EMD_")+15], key[len("EMD_")+16:]
		found := false
		for _, rc := range s.Recipients(dist) {
			if rc.ContactID == contact {
				found = rc.Status == status
			}
		}
		if !found {
			t.Errorf("recipient %s: the truth does not hold the mover's last status %s", key, status)
		}
	}
}
