package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/microapps/microapps/store"
)

// feedData is what the notify package writes into notifications.data.
type feedData struct {
	SurveyName      string     `json:"surveyName"`
	FunctionalGroup string     `json:"functionalGroup"`
	ExpiresAt       *time.Time `json:"expiresAt"`
	RespondLink     string     `json:"respondLink"`
	SentAt          *time.Time `json:"sentAt"`
	Sent            int        `json:"sent"`
	Finished        int        `json:"finished"`
	ReviewLink      string     `json:"reviewLink"`
}

// Seg is a piece of a notification sentence: text, or a date in <time>.
type Seg struct {
	Text   string
	Strong bool
	Time   *TimeVM
}

// FeedItemVM is one notification.
type FeedItemVM struct {
	ID            int64
	Kind          string
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

func parseFeedData(raw json.RawMessage) feedData {
	var d feedData
	if len(raw) > 0 {
		// Tolerate a partly unexpected document: each field decodes on its own.
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) == nil {
			for k, v := range m {
				switch k {
				case "surveyName":
					_ = json.Unmarshal(v, &d.SurveyName)
				case "functionalGroup":
					_ = json.Unmarshal(v, &d.FunctionalGroup)
				case "expiresAt":
					_ = json.Unmarshal(v, &d.ExpiresAt)
				case "respondLink":
					_ = json.Unmarshal(v, &d.RespondLink)
				case "sentAt":
					_ = json.Unmarshal(v, &d.SentAt)
				case "sent":
					_ = json.Unmarshal(v, &d.Sent)
				case "finished":
					_ = json.Unmarshal(v, &d.Finished)
				case "reviewLink":
					_ = json.Unmarshal(v, &d.ReviewLink)
				}
			}
		}
	}
	return d
}

// sentence fills a message template's {placeholders}: survey names in bold,
// dates as <time>, numbers as text.
func sentence(tmpl string, vals map[string]Seg) []Seg {
	var out []Seg
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		j := strings.IndexByte(tmpl, '}')
		if i < 0 || j < i {
			out = append(out, Seg{Text: tmpl})
			break
		}
		if i > 0 {
			out = append(out, Seg{Text: tmpl[:i]})
		}
		if v, ok := vals[tmpl[i+1:j]]; ok {
			out = append(out, v)
		}
		tmpl = tmpl[j+1:]
	}
	return out
}

func (s *Server) feedItemVM(f store.FeedItem, rc *reqCtx) FeedItemVM {
	d := parseFeedData(f.Data)
	vm := FeedItemVM{ID: f.ID, Kind: f.Kind, Unread: f.ReadAt == nil, Group: d.FunctionalGroup,
		Created: s.timeVM(&f.CreatedAt, rc)}
	name := Seg{Text: d.SurveyName, Strong: true}
	switch f.Kind {
	case "survey_statistics":
		vm.Title = rc.lang.T("feed.stat.title")
		sent := s.timeVM(d.SentAt, rc)
		vm.Body = sentence(rc.lang.T("feed.stat.body"), map[string]Seg{
			"survey": name, "sent": {Time: &sent}, "finished": {Text: strconv.Itoa(d.Finished)}, "count": {Text: strconv.Itoa(d.Sent)},
		})
		if f.DistributionID != "" {
			vm.LinkURL, vm.LinkLabel = distributionDataPath(f.IntegrationID, f.DistributionID), rc.lang.T("feed.data")
		}
		if u, ok := safeHTTPURL(d.ReviewLink); ok {
			vm.ExternalURL, vm.ExternalLabel = u, rc.lang.T("feed.review")
		}
	default:
		key := "feed.new"
		if f.Kind == "survey_expiring" {
			key = "feed.exp"
		}
		vm.Title = rc.lang.T(key + ".title")
		due := s.timeVM(d.ExpiresAt, rc)
		tmpl := rc.lang.T(key + ".body")
		if !due.Set {
			tmpl = rc.lang.T(key + ".body.nodue")
		}
		vm.Body = sentence(tmpl, map[string]Seg{"survey": name, "due": {Time: &due}})
		if f.DistributionID != "" {
			vm.LinkURL, vm.LinkLabel = surveyDetailsPath(f.IntegrationID, f.DistributionID), rc.lang.T("feed.details")
		}
		if u, ok := safeHTTPURL(d.RespondLink); ok {
			vm.ExternalURL, vm.ExternalLabel = u, rc.lang.T("detail.respond")
		}
	}
	return vm
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	items, err := s.opts.Store.Feed(r.Context(), rc.email, rc.now, 200)
	if err != nil {
		return err
	}
	vm := make([]FeedItemVM, 0, len(items))
	for _, f := range items {
		vm = append(vm, s.feedItemVM(f, rc))
	}
	l := s.layout(rc, rc.lang.T("feed.title"))
	l.Nav = "notifications"
	s.render(w, r, feedPage(l, vm))
	return nil
}

// markRead marks one notification (id) or all (id=all) read, then goes back
// to the feed. Another user's id changes nothing and says nothing.
func (s *Server) markRead(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var id int64
	if v := r.PostFormValue("id"); v != "all" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return errNotFound
		}
		id = n
	}
	if _, err := s.opts.Store.MarkRead(r.Context(), rc.email, id, rc.now); err != nil {
		return err
	}
	http.Redirect(w, r, "/notifications", http.StatusSeeOther)
	return nil
}
