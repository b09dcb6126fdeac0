package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/internal/words"
	"github.com/microapps/microapps/store"
)

// Data is notifications.data, whatever the kind; the pages read the same
// keys.
type Data = words.Data

// fact is one label and value of a notification (survey, group, due date…).
type fact struct{ Label, Value string }

// link is a labelled absolute http(s) URL; URL "" means none.
type link struct{ Label, URL string }

// texts is a notification as an email or a chat message shows it: the words
// of internal/words (shared with the feed) written out for one reader, with
// absolute links.
type texts struct {
	lang    string
	Subject string // the email's subject: Title, and the send date for statistics
	Title   string
	Body    string   // one sentence with every figure
	Facts   []fact   // survey, functional group, dates and figures
	Context []string // the short line under a chat message: group, due date
	Button  link     // into Qualtrics: respond, or review distributions
	Page    link     // our page: distribution data
	Feed    link
	// Email only.
	Footer   string
	Settings link // where the user turns email notifications off
}

// reader is whom a notification is written for: their language and zone.
type reader struct {
	lang string
	loc  *time.Location
}

// readerOf picks the addressee's language and time zone: theirs when the
// pages learnt them, else the integration's defaults, else the notifier's.
func (n *Notifier) readerOf(w store.DeliveryWork) reader {
	r := reader{lang: n.o.Language, loc: time.UTC}
	for _, l := range []string{w.User.Language, w.Defaults.Language} {
		if words.Supported(l) {
			r.lang = l
			break
		}
	}
	for _, z := range []string{w.User.TimeZone, w.Defaults.TimeZone} {
		if loc := words.Zone(z); loc != nil {
			r.loc = loc
			break
		}
	}
	return r
}

// compose writes notification w for reader r.
func (n *Notifier) compose(w store.DeliveryWork, r reader) (texts, error) {
	nt := w.Notification
	var d Data
	if err := json.Unmarshal(nt.Data, &d); err != nil {
		return texts{}, fmt.Errorf("notification data: %w", err)
	}
	wd, err := words.Compose(words.Notification{Kind: nt.Kind, IntegrationID: nt.IntegrationID, SurveyID: nt.SurveyID,
		DistributionID: nt.DistributionID, Data: d},
		r.lang, links.Integration{BaseURL: w.BaseURL, BrandBaseURL: w.BrandBaseURL, DeepLinks: w.DeepLinks})
	if err != nil {
		return texts{}, err
	}
	txt := func(s []words.Seg) string { return words.Text(s, r.loc, wd.Lang) }
	abs := func(l words.Link) link { return link{l.Label, links.Absolute(n.o.PublicURL, l.URL)} }
	t := texts{lang: wd.Lang, Subject: txt(wd.Subject), Title: txt(wd.Title), Body: txt(wd.Body),
		Button: link{wd.Qualtrics.Label, wd.Qualtrics.URL}, Feed: link{wd.Feed.Label, n.feedURL()}, Footer: wd.Footer, Settings: abs(wd.Settings)}
	if nt.Kind == microapps.NoticeSurveyStatistics && wd.Page.URL != "" {
		t.Page = abs(wd.Page)
	}
	for _, f := range wd.Facts {
		t.Facts = append(t.Facts, fact{f.Label, txt(f.Value)})
	}
	for _, c := range wd.Context {
		t.Context = append(t.Context, txt(c))
	}
	return t, nil
}

// plain is the text/plain part of an email.
func (t texts) plain() string {
	var b strings.Builder
	b.WriteString(t.Body)
	b.WriteString("\n\n")
	for _, l := range []link{t.Button, t.Page, t.Feed} {
		if l.URL != "" {
			fmt.Fprintf(&b, "%s:\n%s\n\n", l.Label, l.URL)
		}
	}
	fmt.Fprintf(&b, "-- \n%s\n", t.Footer)
	if t.Settings.URL != "" {
		fmt.Fprintf(&b, "%s: %s\n", t.Settings.Label, t.Settings.URL)
	}
	return b.String()
}
