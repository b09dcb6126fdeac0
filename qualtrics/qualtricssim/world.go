package qualtricssim

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by the Go API for an unknown brand, survey, distribution, recipient,
// token or client.
var ErrNotFound = errors.New("qualtricssim: not found")

// BrandIDs lists the brands served, in the order given to New.
func (s *Server) BrandIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.brands))
	for i, b := range s.brands {
		out[i] = b.info.ID
	}
	return out
}

// Surveys returns the ground truth of a brand's surveys, in listing order.
func (s *Server) Surveys(brandID string) []Survey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.brandByID[brandID]
	if b == nil {
		return nil
	}
	out := make([]Survey, len(b.surveys))
	for i, st := range b.surveys {
		out[i] = st.sv
	}
	return out
}

// Survey returns one survey.
func (s *Server) Survey(surveyID string) (Survey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.surveys[surveyID]
	if st == nil {
		return Survey{}, ErrNotFound
	}
	return st.sv, nil
}

// Distributions returns a survey's distributions with their stats, Recipients left nil.
func (s *Server) Distributions(surveyID string) []Distribution {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.surveys[surveyID]
	if st == nil {
		return nil
	}
	dists := st.brand.bySurvey[surveyID]
	out := make([]Distribution, len(dists))
	for i, ds := range dists {
		out[i] = ds.d
		out[i].Recipients = nil
	}
	return out
}

// Distribution returns one distribution, Recipients left nil.
func (s *Server) Distribution(distributionID string) (Distribution, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds := s.dists[distributionID]
	if ds == nil {
		return Distribution{}, ErrNotFound
	}
	d := ds.d
	d.Recipients = nil
	return d, nil
}

// Recipients returns a copy of a distribution's recipients in paging order.
func (s *Server) Recipients(distributionID string) []Recipient {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds := s.dists[distributionID]
	if ds == nil {
		return nil
	}
	return append([]Recipient(nil), ds.d.Recipients...)
}

// AddSurvey adds a survey to a brand and returns it with defaults filled in: a new id, the
// brand's first Brand Admin as owner, now as creation and modification date.
func (s *Server) AddSurvey(brandID string, sv Survey) (Survey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.brandByID[brandID]
	if b == nil {
		return Survey{}, fmt.Errorf("qualtricssim: add survey: brand %q: %w", brandID, ErrNotFound)
	}
	if sv.ID == "" {
		sv.ID = newID(s.ids, "SV_")
	}
	if s.surveys[sv.ID] != nil {
		return Survey{}, fmt.Errorf("qualtricssim: add survey: %s exists", sv.ID)
	}
	if sv.OwnerID == "" {
		sv.OwnerID = b.adminID()
	}
	now := s.now().UTC().Truncate(time.Second)
	if sv.CreationDate.IsZero() {
		sv.CreationDate = now
	}
	if sv.LastModifiedDate.IsZero() {
		sv.LastModifiedDate = now
	}
	st := &surveyState{sv: sv, brand: b}
	b.surveys = append(b.surveys, st)
	s.surveys[sv.ID] = st
	return sv, nil
}

func (b *brandState) adminID() string {
	id := ""
	for _, u := range b.users {
		if u.AccountType == AccountBrandAdmin && (id == "" || u.ID < id) {
			id = u.ID
		}
	}
	return id
}

// AddDistribution adds a distribution with its recipients to the survey d.SurveyID and returns
// it with defaults filled in: ids, personal links, link expirations from the distribution,
// RequestType Invite, RequestStatus Done, dates from now. Stats are computed.
func (s *Server) AddDistribution(d Distribution) (Distribution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.surveys[d.SurveyID]
	if st == nil {
		return Distribution{}, fmt.Errorf("qualtricssim: add distribution: survey %q: %w", d.SurveyID, ErrNotFound)
	}
	if d.ID == "" {
		d.ID = newID(s.ids, "EMD_")
	}
	if s.dists[d.ID] != nil {
		return Distribution{}, fmt.Errorf("qualtricssim: add distribution: %s exists", d.ID)
	}
	now := s.now().UTC().Truncate(time.Second)
	if d.RequestType == "" {
		d.RequestType = RequestInvite
	}
	if d.RequestStatus == "" {
		d.RequestStatus = "Done"
	}
	if d.OwnerID == "" {
		d.OwnerID = st.sv.OwnerID
	}
	if d.SendDate.IsZero() {
		d.SendDate = now
	}
	if d.CreatedDate.IsZero() {
		d.CreatedDate = d.SendDate
	}
	if d.ModifiedDate.IsZero() {
		d.ModifiedDate = d.SendDate
	}
	if d.MailingListID == "" {
		d.MailingListID = newID(s.ids, "CG_")
	}
	linkDist := d.ID
	if d.ParentDistributionID != "" {
		linkDist = d.ParentDistributionID
	}
	rs := append([]Recipient(nil), d.Recipients...)
	seen := make(map[string]bool, len(rs))
	for i := range rs {
		rc := &rs[i]
		if rc.ContactID == "" {
			rc.ContactID = newID(s.ids, "CID_")
		}
		if rc.ContactLookupID == "" {
			rc.ContactLookupID = newID(s.ids, "MLRP_")
		}
		if seen[rc.ContactID] || seen[rc.ContactLookupID] {
			return Distribution{}, fmt.Errorf("qualtricssim: add distribution: contact %s twice", rc.ContactID)
		}
		seen[rc.ContactID], seen[rc.ContactLookupID] = true, true
		if rc.Status == "" {
			rc.Status = StatusPending
		}
		if rc.Link == "" {
			rc.Link = personalLink(st.brand.info.LinkHost, d.SurveyID, linkDist, rc.ContactLookupID)
		}
		if rc.LinkExpiration.IsZero() {
			rc.LinkExpiration = d.LinkExpiration
		}
		if rc.SentAt.IsZero() && statusRank(rc.Status) >= 1 {
			rc.SentAt = d.SendDate
		}
	}
	d.Recipients = rs
	ds := s.insertDistribution(st.brand, d)
	out := ds.d
	out.Recipients = nil
	return out, nil
}

// SetRecipientStatus moves a recipient of a distribution to status at time at, as if they had
// acted: the timestamps the status implies are filled in (those of later stages cleared when
// moving back), the distribution's stats and modifiedDate follow, and a finished response counts
// in the survey's responseCounts. Moving to SurveyStarted, SurveyPartiallyFinished or
// SurveyFinished posts the matching event to subscriptions; the returned Delivery tracks them.
func (s *Server) SetRecipientStatus(distributionID, contactID, status string, at time.Time) (*Delivery, error) {
	at = at.UTC()
	s.mu.Lock()
	ds := s.dists[distributionID]
	if ds == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("qualtricssim: set status: distribution %q: %w", distributionID, ErrNotFound)
	}
	i, ok := ds.byContact[contactID]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("qualtricssim: set status: contact %q in %s: %w", contactID, distributionID, ErrNotFound)
	}
	rc := &ds.d.Recipients[i]
	old := rc.Status
	ds.d.Stats.add(old, -1)
	ds.d.Stats.add(status, 1)
	rc.Status = status
	rank := statusRank(status)
	fill := func(t *time.Time, need bool) {
		switch {
		case need && t.IsZero():
			*t = at
		case !need:
			*t = time.Time{}
		}
	}
	fill(&rc.SentAt, rank >= 1)
	fill(&rc.OpenedAt, rank >= 2 || (status == StatusComplaint && !rc.OpenedAt.IsZero()))
	fill(&rc.ResponseStartedAt, rank >= 3)
	fill(&rc.ResponseCompletedAt, rank == 4)
	switch {
	case rank >= 3 && rc.SurveySessionID == "":
		rc.SurveySessionID = newID(s.ids, "FS_")
	case rank < 3:
		rc.SurveySessionID = ""
	}
	switch {
	case (rank == 4 || status == StatusSurveyPartiallyFinished) && rc.ResponseID == "":
		rc.ResponseID = newID(s.ids, "R_")
	case rank < 3:
		rc.ResponseID = ""
	}
	if at.After(ds.d.ModifiedDate) {
		ds.d.ModifiedDate = at
	}
	st := s.surveys[ds.d.SurveyID]
	if st != nil && rank == 4 && statusRank(old) != 4 {
		st.sv.ResponseCounts.Auditable++
	}
	events := s.eventsFor(ds.brand, eventTopic(status, ds.d.SurveyID), EventMessage{
		SurveyID: ds.d.SurveyID, ResponseID: rc.ResponseID, RecipientID: rc.ContactID, DistributionID: ds.d.ID,
		CompletedDate: eventTime(at), BrandID: ds.brand.info.ID, Status: "Complete",
	})
	s.mu.Unlock()
	return s.deliver(events), nil
}

// SetSurveyActive activates or deactivates a survey and posts controlpanel.activateSurvey or
// controlpanel.deactivateSurvey to matching subscriptions.
func (s *Server) SetSurveyActive(surveyID string, active bool) (*Delivery, error) {
	s.mu.Lock()
	st := s.surveys[surveyID]
	if st == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("qualtricssim: set active: survey %q: %w", surveyID, ErrNotFound)
	}
	now := s.now().UTC().Truncate(time.Second)
	st.sv.IsActive = active
	st.sv.LastModifiedDate = now
	topic := "controlpanel.deactivateSurvey"
	if active {
		topic = "controlpanel.activateSurvey"
	}
	events := s.eventsFor(st.brand, topic, EventMessage{SurveyID: surveyID, BrandID: st.brand.info.ID, CompletedDate: eventTime(now), Status: "Complete"})
	s.mu.Unlock()
	return s.deliver(events), nil
}

// RevokeToken makes an API token answer 401 DCD_7, as a token regenerated in the UI does.
func (s *Server) RevokeToken(token string) error { return s.setTokenRevoked(token, true) }

// RestoreToken undoes RevokeToken.
func (s *Server) RestoreToken(token string) error { return s.setTokenRevoked(token, false) }

func (s *Server) setTokenRevoked(token string, revoked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.tokens[token]
	if cr == nil {
		return ErrNotFound
	}
	cr.revoked = revoked
	return nil
}

// SetDirectoryLicence switches a brand's XM Directory licence; without one, history answers 404.
func (s *Server) SetDirectoryLicence(brandID string, licensed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.brandByID[brandID]
	if b == nil {
		return ErrNotFound
	}
	b.info.NoDirectoryLicence = !licensed
	return nil
}
