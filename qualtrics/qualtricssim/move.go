package qualtricssim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// SetLinkExpiration moves a distribution's surveyLink.expirationDate, and the
// link expiration of each of its recipients, to at (zero: no expiry), as an
// owner who shortens or extends a distribution's links does; its modifiedDate
// becomes now.
func (s *Server) SetLinkExpiration(distributionID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.dists[distributionID]
	if ds == nil {
		return fmt.Errorf("qualtricssim: set link expiration: distribution %q: %w", distributionID, ErrNotFound)
	}
	if !at.IsZero() {
		at = at.UTC().Truncate(time.Second)
	}
	ds.d.LinkExpiration = at
	for i := range ds.d.Recipients {
		ds.d.Recipients[i].LinkExpiration = at
	}
	if now := s.now().UTC().Truncate(time.Second); now.After(ds.d.ModifiedDate) {
		ds.d.ModifiedDate = now
	}
	return nil
}

// Change is one thing a Mover did to the world.
type Change struct {
	At             time.Time
	Kind           string // "survey", "status", "close", "expire"
	BrandID        string
	SurveyID       string
	DistributionID string
	ContactID      string
	Email          string
	Status         string    // the recipient's new status ("status"); the first recipients' ("survey")
	Expiry         time.Time // the new link expiration ("expire", "survey")
	// Events tracks the callbacks the change posted to event subscriptions.
	Events *Delivery `json:"-"`
}

// Mover makes a simulated Qualtrics move the way its people do, one seeded
// random step at a time: owners create surveys with an invitation, close
// them and shorten their links; recipients are reached, bounce, open, start
// and finish. It touches only surveys it created, so the brands' generated
// data stays as generated, and the same seed and clock make the same steps.
// Safe for concurrent use.
type Mover struct {
	s      *Server
	emails []string

	mu      sync.Mutex
	r       *rand.Rand
	brands  []string
	surveys []*moved
}

type moved struct {
	brand, survey, dist string
	contacts            []string
	closed, shortened   bool
}

// NewMover returns a Mover over the brands given (all of s's when none),
// inviting people drawn from emails.
func NewMover(s *Server, seed int64, emails []string, brands ...string) *Mover {
	if len(brands) == 0 {
		brands = s.BrandIDs()
	}
	return &Mover{s: s, emails: emails, brands: brands, r: rand.New(rand.NewPCG(uint64(seed), 0x51ed27))}
}

// next is the move of a recipient along the funnel, with the odds of each.
var next = map[string][]struct {
	to   string
	odds int
}{
	StatusPending:                 {{StatusSuccess, 7}, {StatusHardBounce, 2}, {StatusSoftBounce, 1}},
	StatusSuccess:                 {{StatusOpened, 8}, {StatusComplaint, 1}, {StatusSurveyFinished, 1}},
	StatusOpened:                  {{StatusSurveyStarted, 1}},
	StatusSurveyStarted:           {{StatusSurveyPartiallyFinished, 1}, {StatusSurveyFinished, 2}},
	StatusSurveyPartiallyFinished: {{StatusSurveyFinished, 1}},
}

// Step makes one change at now and returns it.
func (m *Mover) Step(now time.Time) (Change, error) {
	now = now.UTC().Truncate(time.Second)
	m.mu.Lock()
	defer m.mu.Unlock()
	roll := m.r.IntN(100)
	switch {
	case roll < 15 || len(m.surveys) == 0:
		return m.newSurvey(now)
	case roll < 22:
		if c, ok, err := m.close(now); ok || err != nil {
			return c, err
		}
	case roll < 32:
		if c, ok, err := m.shorten(now); ok || err != nil {
			return c, err
		}
	}
	return m.advance(now)
}

func (m *Mover) newSurvey(now time.Time) (Change, error) {
	brand := m.brands[m.r.IntN(len(m.brands))]
	n := len(m.surveys) + 1
	sv, err := m.s.AddSurvey(brand, Survey{Name: fmt.Sprintf("Pulse %d", n), IsActive: true,
		CreationDate: now, LastModifiedDate: now, StartDate: now, EndDate: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		return Change{}, err
	}
	expiry := now.Add(7*24*time.Hour + time.Duration(m.r.IntN(72))*time.Hour)
	k := 2 + m.r.IntN(4)
	picked := map[string]bool{}
	var rs []Recipient
	for len(rs) < k && len(picked) < len(m.emails) {
		e := m.emails[m.r.IntN(len(m.emails))]
		if picked[e] {
			continue
		}
		picked[e] = true
		st := StatusPending
		if m.r.IntN(2) == 0 {
			st = StatusSuccess
		}
		first, last := namesFromEmail(e)
		rs = append(rs, Recipient{Email: e, FirstName: first, LastName: last, Status: st})
	}
	d, err := m.s.AddDistribution(Distribution{SurveyID: sv.ID, SendDate: now, LinkExpiration: expiry,
		Headers: Headers{Subject: "Your opinion: " + sv.Name, FromEmail: "noreply@qualtrics.com"}, Recipients: rs})
	if err != nil {
		return Change{}, err
	}
	mv := &moved{brand: brand, survey: sv.ID, dist: d.ID}
	for _, rc := range m.s.Recipients(d.ID) {
		mv.contacts = append(mv.contacts, rc.ContactID)
	}
	m.surveys = append(m.surveys, mv)
	return Change{At: now, Kind: "survey", BrandID: brand, SurveyID: sv.ID, DistributionID: d.ID, Expiry: expiry}, nil
}

func (m *Mover) close(now time.Time) (Change, bool, error) {
	open := slices.DeleteFunc(slices.Clone(m.surveys), func(mv *moved) bool { return mv.closed })
	if len(open) < 3 { // keep a few open
		return Change{}, false, nil
	}
	mv := open[m.r.IntN(len(open))]
	ev, err := m.s.SetSurveyActive(mv.survey, false)
	if err != nil {
		return Change{}, true, err
	}
	mv.closed = true
	return Change{At: now, Kind: "close", BrandID: mv.brand, SurveyID: mv.survey, Events: ev}, true, nil
}

// shorten brings a distribution's links to expire within the next day, so
// the expiry notices become due while the test runs.
func (m *Mover) shorten(now time.Time) (Change, bool, error) {
	cands := slices.DeleteFunc(slices.Clone(m.surveys), func(mv *moved) bool { return mv.shortened })
	if len(cands) == 0 {
		return Change{}, false, nil
	}
	mv := cands[m.r.IntN(len(cands))]
	expiry := now.Add(2*time.Hour + time.Duration(m.r.IntN(18*60))*time.Minute)
	if err := m.s.SetLinkExpiration(mv.dist, expiry); err != nil {
		return Change{}, true, err
	}
	mv.shortened = true
	return Change{At: now, Kind: "expire", BrandID: mv.brand, SurveyID: mv.survey, DistributionID: mv.dist, Expiry: expiry}, true, nil
}

// advance moves one recipient of a survey the Mover created one step along
// the funnel.
func (m *Mover) advance(now time.Time) (Change, error) {
	for range 20 {
		mv := m.surveys[m.r.IntN(len(m.surveys))]
		contact := mv.contacts[m.r.IntN(len(mv.contacts))]
		rs := m.s.Recipients(mv.dist)
		i := slices.IndexFunc(rs, func(rc Recipient) bool { return rc.ContactID == contact })
		if i < 0 {
			continue
		}
		opts := next[rs[i].Status]
		if len(opts) == 0 {
			continue
		}
		total := 0
		for _, o := range opts {
			total += o.odds
		}
		pick := m.r.IntN(total)
		to := opts[0].to
		for _, o := range opts {
			if pick < o.odds {
				to = o.to
				break
			}
			pick -= o.odds
		}
		ev, err := m.s.SetRecipientStatus(mv.dist, contact, to, now)
		if err != nil {
			return Change{}, err
		}
		return Change{At: now, Kind: "status", BrandID: mv.brand, SurveyID: mv.survey, DistributionID: mv.dist,
			ContactID: contact, Email: rs[i].Email, Status: to, Events: ev}, nil
	}
	return m.newSurvey(now)
}
