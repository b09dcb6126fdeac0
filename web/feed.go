package web

import (
	"net/http"
	"strconv"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/internal/words"
	"github.com/microapps/microapps/store"
)

// Seg is a piece of a notification sentence: text, or a date in <time>.
type Seg struct {
	Text   string
	Strong bool
	Time   *TimeVM
}

// FeedItemVM is one notification.
type FeedItemVM struct {
	ID            int64
	Kind          microapps.NotificationKind
	Unread        bool
	Title         string
	Group         string
	Body          []Seg
	Created       TimeVM
	LinkURL       string // a page of ours
	LinkLabel     string
	ExternalURL   string // Qualtrics
	ExternalLabel string
}

// feedItemVM puts a notification into the words the emails and chat
// messages use (internal/words), with its dates as <time>.
func (s *Server) feedItemVM(f store.FeedItem, in links.Integration, rc *Request) FeedItemVM {
	d := words.ParseData(f.Data)
	vm := FeedItemVM{ID: f.ID, Kind: f.Kind, Unread: f.ReadAt == nil, Group: d.FunctionalGroup,
		Created: s.Time(&f.CreatedAt, rc)}
	w, err := words.Compose(words.Notification{Kind: f.Kind, IntegrationID: f.IntegrationID, SurveyID: f.SurveyID,
		DistributionID: f.DistributionID, Data: d}, string(rc.Lang), in)
	if err != nil {
		vm.Title = string(f.Kind) // an unknown kind shows itself rather than vanish
		return vm
	}
	vm.Title = w.Heading
	for _, g := range w.Body {
		switch {
		case g.Time != nil:
			t := s.Time(g.Time, rc)
			vm.Body = append(vm.Body, Seg{Time: &t})
		default:
			vm.Body = append(vm.Body, Seg{Text: g.Text, Strong: g.Name})
		}
	}
	vm.LinkURL, vm.LinkLabel = w.Page.URL, w.Page.Label
	vm.ExternalURL, vm.ExternalLabel = w.Qualtrics.URL, w.Qualtrics.Label
	return vm
}

// linksOf is the link settings of an item's integration as deep links take them.
func linksOf(p store.FeedPage, integrationID string) links.Integration {
	l := p.Links[integrationID]
	return links.Integration{BaseURL: l.BaseURL, BrandBaseURL: l.BrandBaseURL, DeepLinks: l.DeepLinks}
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request, rc *Request) error {
	// One round trip: the frame's summary, the items and their
	// integrations' link settings.
	p, err := rc.Read.FeedPage(r.Context(), rc.Email, rc.Now, 200)
	rc.Summary = p.Summary
	if err != nil {
		return err
	}
	vm := make([]FeedItemVM, 0, len(p.Items))
	for _, f := range p.Items {
		vm = append(vm, s.feedItemVM(f, linksOf(p, f.IntegrationID), rc))
	}
	l := s.Layout(rc, rc.Lang.T("feed.title"))
	l.Nav = "notifications"
	s.Render(w, r, feedPage(l, vm))
	return nil
}

// markRead marks one notification (id) or all (id=all) read, then goes back
// to the feed. Another user's id changes nothing and says nothing.
func (s *Server) markRead(w http.ResponseWriter, r *http.Request, rc *Request) error {
	var id int64
	if v := r.PostFormValue("id"); v != "all" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return ErrNotFound
		}
		id = n
	}
	if _, err := s.opts.Store.MarkRead(r.Context(), rc.Email, id, rc.Now); err != nil {
		return err
	}
	http.Redirect(w, r, "/notifications", http.StatusSeeOther)
	return nil
}
