package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/microapps/microapps/store"
)

// Pager is the position in a paginated list.
type Pager struct {
	Page, Pages, Total int
	PrevURL, NextURL   string
}

func NewPager(r *http.Request, total, size int) Pager {
	p := Pager{Page: PageParam(r), Total: total, Pages: (total + size - 1) / size}
	if p.Pages < 1 {
		p.Pages = 1
	}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if p.Page > 1 {
		p.PrevURL = link(min(p.Page-1, p.Pages))
	}
	if p.Page < p.Pages {
		p.NextURL = link(p.Page + 1)
	}
	return p
}

// keysetPager links the pages before and after a keyset page of recipients.
// It knows no total: counting would read the whole distribution.
func keysetPager(r *http.Request, page store.RecipientsPage, rq store.RecipientsQuery) Pager {
	var p Pager
	link := func(dir string, row store.RecipientRow) string {
		q := r.URL.Query()
		q.Del("after")
		q.Del("before")
		q.Del("page")
		q.Set(dir, row.Email+"\n"+row.ContactID)
		return r.URL.Path + "?" + q.Encode()
	}
	if len(page.Rows) == 0 {
		return p
	}
	started := rq.AfterEmail != "" || rq.AfterContactID != ""
	if (rq.Before && page.More) || (!rq.Before && started) {
		p.PrevURL = link("before", page.Rows[0])
	}
	if (!rq.Before && page.More) || rq.Before {
		p.NextURL = link("after", page.Rows[len(page.Rows)-1])
	}
	return p
}

func PageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, 100000)
}

func validID(s string) bool { return s != "" && len(s) <= 200 }

// ---- My active surveys

// SurveyRowVM is one row of My active surveys.
type SurveyRowVM struct {
	SurveyID   string
	Name       string
	Group      string
	Icon       string
	Ends       TimeVM
	Status     Tag
	DetailsURL string
}

func (s *Server) myActiveSurveys(w http.ResponseWriter, r *http.Request, rc *Request) error {
	rows, sum, err := rc.Read.MyActiveSurveysAndSummary(r.Context(), rc.Email, rc.Now)
	if err != nil {
		return err
	}
	rc.Summary = sum
	l := s.Layout(rc, rc.Lang.T("my.title"))
	l.Nav = "my"
	vm := make([]SurveyRowVM, 0, len(rows))
	refs := make([]store.IntegrationRef, 0, len(rows))
	for _, m := range rows {
		vm = append(vm, SurveyRowVM{
			SurveyID:   m.SurveyID,
			Name:       m.SurveyName,
			Group:      groupName(m.Integration),
			Icon:       m.Integration.Icon,
			Ends:       s.Time(m.ExpiresAt, rc),
			Status:     statusTag(m.Status, rc.Lang),
			DetailsURL: surveyDetailsPath(m.Integration.ID, m.DistributionID),
		})
		refs = append(refs, m.Integration)
	}
	l.Stale = s.staleNotes(rc, refs...)
	s.Render(w, r, myActivePage(l, vm))
	return nil
}

func groupName(in store.IntegrationRef) string {
	if in.FunctionalGroup != "" {
		return in.FunctionalGroup
	}
	return in.Name
}

// ---- Survey details

// SurveyDetailVM is the Survey details page.
type SurveyDetailVM struct {
	SurveyID   string
	Name       string
	Group      string
	Icon       string
	Sent       TimeVM
	Expires    TimeVM
	Status     Tag
	Sender     string
	RespondURL string // "" when there is nothing safe to link to
	Finished   bool
	Expired    bool
	Inactive   bool
}

func (s *Server) surveyDetails(w http.ResponseWriter, r *http.Request, rc *Request) error {
	integ, dist := r.PathValue("integrationId"), r.PathValue("distributionId")
	if !store.ValidUUID(integ) || !validID(dist) {
		return s.notFoundWithSummary(r, rc)
	}
	// One round trip: the frame's summary and the invitation.
	d, err := rc.Read.MySurveyDetail(r.Context(), rc.Email, integ, dist, rc.Now)
	rc.Summary = d.Summary
	if err != nil {
		return err
	}
	vm := SurveyDetailVM{
		SurveyID: d.SurveyID,
		Name:     d.SurveyName,
		Group:    groupName(d.Integration),
		Icon:     d.Integration.Icon,
		Sent:     s.Time(d.SentAt, rc),
		Expires:  s.Time(d.ExpiresAt, rc),
		Status:   statusTag(d.Status, rc.Lang),
		Sender:   sender(d.FromName, d.FromEmail),
		Finished: isFinished(d.Status) || d.FinishedElsewhere,
		Expired:  d.ExpiresAt != nil && !d.ExpiresAt.After(rc.Now),
		Inactive: !d.SurveyActive,
	}
	if d.FinishedElsewhere && !isFinished(d.Status) {
		vm.Status = statusTag("SurveyFinished", rc.Lang)
	}
	if !vm.Finished && !vm.Expired && !vm.Inactive {
		vm.RespondURL, _ = safeHTTPURL(d.RespondLink)
	}
	l := s.Layout(rc, d.SurveyName)
	l.Nav = "my"
	l.Stale = s.staleNotes(rc, d.Integration)
	s.Render(w, r, surveyDetailPage(l, vm))
	return nil
}

func sender(name, email string) string {
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case name != "":
		return name
	}
	return email
}

// ---- Open surveys

const openSurveysPageSize = 25

// OpenSurveyVM is a row of Open surveys.
type OpenSurveyVM struct {
	SurveyID   string
	Name       string
	Group      string
	Icon       string
	Responses  int
	Sent       int
	Finished   int
	Rate       int // percent finished of sent
	Ends       TimeVM
	ResultsURL string
}

// OpenSurveysVM is the Open surveys page.
type OpenSurveysVM struct {
	Search     string
	Rows       []OpenSurveyVM
	Pager      Pager
	EmptyLabel string
}

func percent(part, whole int) int {
	if whole <= 0 {
		return 0
	}
	p := part * 100 / whole
	return max(0, min(p, 100))
}

func (s *Server) openSurveys(w http.ResponseWriter, r *http.Request, rc *Request) error {
	search := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(search) > 200 {
		search = search[:200]
	}
	page := PageParam(r)
	// One round trip: the frame's summary, the user's integrations, the total
	// and the page.
	res, err := rc.Read.OpenSurveys(r.Context(), store.OpenSurveysQuery{
		Email: rc.Email, Search: search, Limit: openSurveysPageSize, Offset: (page - 1) * openSurveysPageSize,
	}, rc.Now)
	rc.Summary = res.Summary
	if err != nil {
		return err
	}
	if !rc.Summary.IsAdmin {
		return ErrNotFound
	}
	vm := OpenSurveysVM{Search: search, Pager: NewPager(r, res.Total, openSurveysPageSize)}
	for _, o := range res.Rows {
		vm.Rows = append(vm.Rows, OpenSurveyVM{
			SurveyID: o.SurveyID, Name: o.Name, Group: groupName(o.Integration), Icon: o.Integration.Icon,
			Responses: o.Responses, Sent: o.Sent, Finished: o.Finished, Rate: percent(o.Finished, o.Sent),
			Ends: s.Time(o.EndDate, rc), ResultsURL: surveyResultsPath(o.Integration.ID, o.SurveyID),
		})
	}
	names := make([]string, 0, len(res.Integrations))
	for _, a := range res.Integrations {
		names = append(names, groupName(a))
	}
	refs := res.Integrations
	if search != "" {
		vm.EmptyLabel = rc.Lang.T("admin.empty.search", search)
	} else {
		vm.EmptyLabel = rc.Lang.T("admin.empty", strings.Join(names, ", "))
	}
	l := s.Layout(rc, rc.Lang.T("admin.title"))
	l.Nav = "admin"
	l.Stale = s.staleNotes(rc, refs...)
	s.Render(w, r, openSurveysPage(l, vm))
	return nil
}

// ---- Survey results

const recipientsPageSize = 50

// DistributionVM is a distribution in the Survey results list.
type DistributionVM struct {
	ID        string
	Type      string
	Subject   string
	Sent      TimeVM
	SentCount int
	Finished  int
	Rate      int
	Selected  bool
	SelectURL string
	DataURL   string
}

// RecipientVM is a row of the recipients table.
type RecipientVM struct {
	Email  string
	Status Tag
	At     TimeVM
}

// FilterVM is one option of the status filter.
type FilterVM struct {
	Key, Label string
	Selected   bool
}

// SurveyResultsVM is the Survey results page.
type SurveyResultsVM struct {
	SurveyID      string
	Name          string
	Group         string
	Icon          string
	Recorded      int
	Generated     int
	Deleted       int
	Sent          int
	Finished      int
	Ends          TimeVM
	ResultsURL    string // Qualtrics
	Distributions []DistributionVM
	Selected      *DistributionVM
	Filters       []FilterVM
	Status        string
	Recipients    []RecipientVM
	Pager         Pager
	Path          string
}

func (s *Server) surveyResults(w http.ResponseWriter, r *http.Request, rc *Request) error {
	integ, surveyID := r.PathValue("integrationId"), r.PathValue("surveyId")
	if !store.ValidUUID(integ) || !validID(surveyID) {
		return s.notFoundWithSummary(r, rc)
	}
	q := r.URL.Query()
	status := q.Get("status")
	if !slices.Contains(filterKeys, status) {
		status = ""
	}
	want := q.Get("distribution")
	rq := store.RecipientsQuery{DistributionID: want, Limit: recipientsPageSize}
	// Keyset paging: ?after= or ?before= carries the email and contact id
	// of the row the page starts after (or ends before).
	cursor := q.Get("after")
	if b := q.Get("before"); b != "" {
		cursor, rq.Before = b, true
	}
	if e, c, ok := strings.Cut(cursor, "\n"); ok {
		rq.AfterEmail, rq.AfterContactID = e, c
	} else {
		rq.Before = false
	}
	if status != "" {
		rq.Statuses = statusesFor(status)
	}
	// One round trip: the frame's summary, the survey, its distributions and
	// the selected one's page of recipients.
	res, err := rc.Read.SurveyResults(r.Context(), store.SurveyResultsQuery{Email: rc.Email, IntegrationID: integ,
		SurveyID: surveyID, Recipients: rq}, rc.Now)
	rc.Summary = res.Summary
	if err != nil {
		return err
	}
	vm := SurveyResultsVM{
		SurveyID: res.SurveyID, Name: res.Name, Group: groupName(res.Integration.IntegrationRef), Icon: res.Integration.Icon,
		Recorded: res.ResponsesAuditable, Generated: res.ResponsesGenerated, Deleted: res.ResponsesDeleted,
		Ends:       s.Time(res.EndDate, rc),
		ResultsURL: deepLink(res.Integration, linkResults, map[string]string{"surveyId": res.SurveyID}),
		Path:       r.URL.Path,
		Status:     status,
	}
	base := surveyResultsPath(integ, res.SurveyID)
	for _, d := range res.Distributions {
		dv := DistributionVM{
			ID: d.ID, Type: rc.Lang.T("type." + d.RequestType), Subject: d.Subject,
			Sent: s.Time(d.SendDate, rc), SentCount: d.Sent, Finished: d.Finished, Rate: percent(d.Finished, d.Sent),
			SelectURL: base + "?distribution=" + url.QueryEscape(d.ID),
			DataURL:   distributionDataPath(integ, d.ID),
		}
		if strings.HasPrefix(dv.Type, "type.") {
			dv.Type = d.RequestType
		}
		dv.Selected = d.ID == res.Selected
		vm.Sent += d.Sent
		vm.Finished += d.Finished
		vm.Distributions = append(vm.Distributions, dv)
	}
	for i := range vm.Distributions {
		if vm.Distributions[i].Selected {
			vm.Selected = &vm.Distributions[i]
		}
	}
	if want != "" && vm.Selected == nil {
		return ErrNotFound
	}
	vm.Filters = append(vm.Filters, FilterVM{Key: "", Label: rc.Lang.T("results.filter.all"), Selected: status == ""})
	for _, k := range filterKeys {
		vm.Filters = append(vm.Filters, FilterVM{Key: k, Label: rc.Lang.T("status." + k), Selected: k == status})
	}
	if vm.Selected != nil {
		for _, rr := range res.Recipients.Rows {
			vm.Recipients = append(vm.Recipients, RecipientVM{Email: rr.Email, Status: statusTag(rr.Status, rc.Lang), At: s.Time(rr.LatestAt(), rc)})
		}
		vm.Pager = keysetPager(r, res.Recipients, rq)
	}
	l := s.Layout(rc, res.Name)
	l.Nav = "admin"
	l.Stale = s.staleNotes(rc, res.Integration.IntegrationRef)
	s.Render(w, r, surveyResultsPage(l, vm))
	return nil
}

// notFoundWithSummary is the 404 of a page that loads the frame's summary
// with its own data (pageWith(h, false)) but found the request invalid
// before asking for it.
func (s *Server) notFoundWithSummary(r *http.Request, rc *Request) error {
	sum, err := rc.Read.UserSummary(r.Context(), rc.Email, rc.Now)
	if err != nil {
		return err
	}
	rc.Summary = sum
	return ErrNotFound
}

// ---- Distribution data

// StatVM is one of the nine figures.
type StatVM struct {
	Key   string
	Label string
	Value int
}

// DistributionDataVM is the Distribution data page.
type DistributionDataVM struct {
	ID         string
	SurveyName string
	SurveyURL  string
	Group      string
	Icon       string
	Type       string
	Subject    string
	Sender     string
	Created    TimeVM
	Sent       TimeVM
	Expires    TimeVM
	Stats      []StatVM
	RateLabel  string
	ReviewURL  string
	Chart      ChartVM
}

func (s *Server) distributionData(w http.ResponseWriter, r *http.Request, rc *Request) error {
	integ, distID := r.PathValue("integrationId"), r.PathValue("distributionId")
	if !store.ValidUUID(integ) || !validID(distID) {
		return s.notFoundWithSummary(r, rc)
	}
	// One round trip: the frame's summary, the distribution and its chart.
	d, err := rc.Read.DistributionData(r.Context(), rc.Email, integ, distID, rc.Now)
	rc.Summary = d.Summary
	if err != nil {
		return err
	}
	st := d.Stats
	vm := DistributionDataVM{
		ID: d.ID, SurveyName: d.SurveyName, SurveyURL: surveyResultsPath(integ, d.SurveyID) + "?distribution=" + url.QueryEscape(d.ID),
		Group: groupName(d.Integration.IntegrationRef), Icon: d.Integration.Icon,
		Type: rc.Lang.T("type." + d.RequestType), Subject: d.Subject, Sender: sender(d.FromName, d.FromEmail),
		Created: s.Time(d.CreatedDate, rc), Sent: s.Time(d.SendDate, rc), Expires: s.Time(d.LinkExpiration, rc),
		Stats: []StatVM{
			{"sent", rc.Lang.T("stat.sent"), st.Sent},
			{"opened", rc.Lang.T("stat.opened"), st.Opened},
			{"started", rc.Lang.T("stat.started"), st.Started},
			{"finished", rc.Lang.T("stat.finished"), st.Finished},
			{"bounced", rc.Lang.T("stat.bounced"), st.Bounced},
			{"failed", rc.Lang.T("stat.failed"), st.Failed},
			{"skipped", rc.Lang.T("stat.skipped"), st.Skipped},
			{"blocked", rc.Lang.T("stat.blocked"), st.Blocked},
			{"complaints", rc.Lang.T("stat.complaints"), st.Complaints},
		},
		RateLabel: strconv.Itoa(percent(st.Finished, st.Sent)) + "%",
		ReviewURL: deepLink(d.Integration, linkReviewDistributions, map[string]string{"surveyId": d.SurveyID, "distributionId": d.ID}),
		Chart:     buildChart(d.History, rc),
	}
	if strings.HasPrefix(vm.Type, "type.") {
		vm.Type = d.RequestType
	}
	if rc.Lang == LangFR {
		vm.RateLabel = strconv.Itoa(percent(st.Finished, st.Sent)) + " %"
	}
	title := rc.Lang.T("dist.title")
	if d.SurveyName != "" {
		title += " – " + d.SurveyName
	}
	l := s.Layout(rc, title)
	l.Nav = "admin"
	l.Stale = s.staleNotes(rc, d.Integration.IntegrationRef)
	s.Render(w, r, distributionDataPage(l, vm))
	return nil
}
