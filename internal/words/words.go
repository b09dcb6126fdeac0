// Package words puts a notification into words, in English or French: the
// one place that writes what the feed, the emails and the chat messages say,
// and the one place that writes a date for them. It returns segments (text,
// the survey's name, a moment), so a page can show a date as <time> and an
// email or a chat message as text in the reader's zone.
package words

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // containers often lack /usr/share/zoneinfo; users' zones must still load

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
)

// Data is notifications.data, whatever the kind.
type Data struct {
	SurveyName      string  `json:"surveyName"`
	FunctionalGroup string  `json:"functionalGroup"`
	ExpiresAt       *string `json:"expiresAt"`
	RespondLink     string  `json:"respondLink,omitempty"`
	SentAt          *string `json:"sentAt,omitempty"`
	Sent            int     `json:"sent,omitempty"`
	Finished        int     `json:"finished,omitempty"`
	ReviewLink      string  `json:"reviewLink,omitempty"`
}

// ResponseRate is finished/sent in percent, or -1 when nothing was sent.
func (d Data) ResponseRate() float64 {
	if d.Sent <= 0 {
		return -1
	}
	return float64(d.Finished) * 100 / float64(d.Sent)
}

// ParseData reads notifications.data, tolerating a partly unexpected
// document: each field decodes on its own.
func ParseData(raw json.RawMessage) Data {
	var d Data
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return d
	}
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
	return d
}

// Seg is a piece of a sentence: text, the survey's name (Name), or a moment
// (Time, a date only when Day).
type Seg struct {
	Text string
	Name bool
	Time *time.Time
	Day  bool
}

// Fact is a label and its value.
type Fact struct {
	Label string
	Value []Seg
}

// Link is a labelled link; URL "" means none.
type Link struct{ Label, URL string }

// Notification is what Compose needs of a notification row.
type Notification struct {
	Kind           microapps.NotificationKind
	IntegrationID  string
	SurveyID       string
	DistributionID string
	Data           Data
}

// Words is a notification put into words in one language.
type Words struct {
	Lang    string
	Heading string // "New survey": the feed item's title
	Title   []Seg  // "New survey: Pulse": a chat message's title
	Subject []Seg  // an email's subject: Title, and the send date for statistics
	Body    []Seg  // one sentence
	Facts   []Fact // survey, functional group, dates and figures
	Context [][]Seg
	// Qualtrics is the button into Qualtrics (respond, review
	// distributions): an absolute http(s) URL, or "" when the data has no
	// safe one. Page is this service's page about it, a path.
	Qualtrics Link
	Page      Link
	Feed      Link // the feed, a path
	Footer    string
	Settings  Link // the email settings page, a path
}

// Languages are the languages notifications are written in.
var Languages = []string{"en", "fr"}

// Supported reports whether lang is one of Languages.
func Supported(lang string) bool { _, ok := books[lang]; return ok }

type book struct {
	newHeading, expHeading, statHeading      string
	title, statSubject                       string
	newBody, newBodyNoDue, expBody, expNoDue string
	statBody, statRate, statExpires          string
	factSurvey, factGroup, factDue, factSent string
	factCompleted, factRate, factExpires     string
	rate, completed, dueLine, expiresLine    string
	respond, review, details, data, feed     string
	footer, settings                         string
	months                                   [12]string
	dateLayout, dayLayout                    string
	decimalComma                             bool
}

var books = map[string]book{
	"en": {
		newHeading:    "New survey",
		expHeading:    "Survey about to expire",
		statHeading:   "Survey statistics",
		title:         "{heading}: {survey}",
		statSubject:   "{heading}: {survey} (sent {sentDay})",
		newBody:       "You have received a new survey request: {survey}, due on {due}.",
		newBodyNoDue:  "You have received a new survey request: {survey}.",
		expBody:       "{survey} expires on {due} and you have not finished it yet.",
		expNoDue:      "{survey} expires soon and you have not finished it yet.",
		statBody:      "{survey} sent {sent}: {finished} of {count} completed",
		statRate:      " ({rate} response rate)",
		statExpires:   ". The link expires on {expires}.",
		factSurvey:    "Survey",
		factGroup:     "Functional group",
		factDue:       "Due",
		factSent:      "Sent",
		factCompleted: "Completed",
		factRate:      "Response rate",
		factExpires:   "Link expires",
		rate:          "{value}%",
		completed:     "{finished} of {count} completed",
		dueLine:       "Due {due}",
		expiresLine:   "Link expires {expires}",
		respond:       "Respond to survey in Qualtrics",
		review:        "Review distributions",
		details:       "Survey details",
		data:          "Distribution data",
		feed:          "See your notifications",
		footer:        "You receive this email because a Qualtrics survey concerns you.",
		settings:      "Stop these emails",
		months:        [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		dateLayout:    "2 {month} 2006, 15:04 MST",
		dayLayout:     "2 {month} 2006",
	},
	"fr": frenchBook(book{
		newHeading:    "Nouvelle enquête",
		expHeading:    "Enquête bientôt expirée",
		statHeading:   "Statistiques de l’enquête",
		title:         "{heading} : {survey}",
		statSubject:   "{heading} : {survey} (envoyée le {sentDay})",
		newBody:       "Vous avez reçu une nouvelle demande d’enquête : {survey}, à remplir avant le {due}.",
		newBodyNoDue:  "Vous avez reçu une nouvelle demande d’enquête : {survey}.",
		expBody:       "{survey} expire le {due} et vous ne l’avez pas encore terminée.",
		expNoDue:      "{survey} expire bientôt et vous ne l’avez pas encore terminée.",
		statBody:      "{survey} envoyée le {sent} : {finished} sur {count} terminées",
		statRate:      " (taux de réponse {rate})",
		statExpires:   ". Le lien expire le {expires}.",
		factSurvey:    "Enquête",
		factGroup:     "Groupe fonctionnel",
		factDue:       "À remplir avant le",
		factSent:      "Envoyée le",
		factCompleted: "Terminées",
		factRate:      "Taux de réponse",
		factExpires:   "Le lien expire le",
		rate:          "{value} %",
		completed:     "{finished} sur {count} terminées",
		dueLine:       "À remplir avant le {due}",
		expiresLine:   "Le lien expire le {expires}",
		respond:       "Répondre à l’enquête dans Qualtrics",
		review:        "Voir les distributions",
		details:       "Détails de l’enquête",
		data:          "Données de la distribution",
		feed:          "Voir vos notifications",
		footer:        "Vous recevez ce courriel parce qu’une enquête Qualtrics vous concerne.",
		settings:      "Ne plus recevoir ces courriels",
		months:        [12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."},
		dateLayout:    "2 {month} 2006, 15:04 MST",
		dayLayout:     "2 {month} 2006",
		decimalComma:  true,
	}),
}

// French typography: a no-break space before ":" and inside « », a narrow
// no-break space before ";", "?", "!" and "%".
const (
	NBSP       = "\u00a0"
	NarrowNBSP = "\u202f"
)

var frenchSpaces = strings.NewReplacer(" %%", NarrowNBSP+"%%", " :", NBSP+":", " ;", NarrowNBSP+";",
	" ?", NarrowNBSP+"?", " !", NarrowNBSP+"!", "« ", "«"+NBSP, " »", NBSP+"»")

// French puts French typography's no-break spaces into s, written with
// plain spaces; s may be a format string (" %%" is a percent sign there,
// " %s" a verb left alone).
func French(s string) string { return frenchSpaces.Replace(s) }

func frenchBook(b book) book {
	for _, p := range []*string{&b.title, &b.statSubject, &b.newBody, &b.newBodyNoDue, &b.expBody, &b.expNoDue, &b.statBody,
		&b.statRate, &b.statExpires, &b.completed, &b.dueLine, &b.expiresLine} {
		*p = French(*p)
	}
	b.rate = "{value}" + NarrowNBSP + "%"
	return b
}

// Date writes t in loc for lang: "12 Mar 2026, 14:05 CET", "12 mars 2026,
// 14:05 CET"; day only: "12 Mar 2026".
func Date(t time.Time, loc *time.Location, lang string, day bool) string {
	b, ok := books[lang]
	if !ok {
		b = books["en"]
	}
	t = t.In(loc)
	layout := b.dateLayout
	if day {
		layout = b.dayLayout
	}
	before, after, _ := strings.Cut(layout, "{month}")
	return t.Format(before) + b.months[t.Month()-1] + t.Format(after)
}

// Text joins segments into plain text, moments written in loc for lang.
func Text(segs []Seg, loc *time.Location, lang string) string {
	var s strings.Builder
	for _, g := range segs {
		if g.Time != nil {
			s.WriteString(Date(*g.Time, loc, lang, g.Day))
		} else {
			s.WriteString(g.Text)
		}
	}
	return s.String()
}

// fill splits a {placeholder} template into segments.
func fill(tmpl string, vals map[string][]Seg) []Seg {
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
		out = append(out, vals[tmpl[i+1:j]]...)
		tmpl = tmpl[j+1:]
	}
	return out
}

func parseTime(s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return nil
	}
	return &t
}

func text(s string) []Seg { return []Seg{{Text: s}} }

// Compose writes notification n in lang (English when lang is not
// supported). in is the integration's link settings, for the Qualtrics
// buttons.
func Compose(n Notification, lang string, in links.Integration) (Words, error) {
	b, ok := books[lang]
	if !ok {
		lang, b = "en", books["en"]
	}
	d := n.Data
	w := Words{Lang: lang, Feed: Link{b.feed, links.Feed}, Footer: b.footer, Settings: Link{b.settings, links.EmailSettings}}
	name := []Seg{{Text: d.SurveyName, Name: true}}
	vals := map[string][]Seg{"survey": name, "group": text(d.FunctionalGroup)}
	w.Facts = append(w.Facts, Fact{b.factSurvey, name})
	if d.FunctionalGroup != "" {
		w.Facts = append(w.Facts, Fact{b.factGroup, text(d.FunctionalGroup)})
		w.Context = append(w.Context, text(d.FunctionalGroup))
	}
	expires := parseTime(d.ExpiresAt)
	if expires != nil {
		vals["due"] = []Seg{{Time: expires}}
		vals["expires"] = vals["due"]
	}
	switch n.Kind {
	case microapps.NoticeNewSurvey, microapps.NoticeSurveyExpiring:
		body := b.newBody
		w.Heading = b.newHeading
		switch {
		case n.Kind == microapps.NoticeSurveyExpiring && expires != nil:
			w.Heading, body = b.expHeading, b.expBody
		case n.Kind == microapps.NoticeSurveyExpiring:
			w.Heading, body = b.expHeading, b.expNoDue
		case expires == nil:
			body = b.newBodyNoDue
		}
		w.Body = fill(body, vals)
		if expires != nil {
			w.Facts = append(w.Facts, Fact{b.factDue, vals["due"]})
			w.Context = append(w.Context, fill(b.dueLine, vals))
		}
		w.Qualtrics = Link{b.respond, d.RespondLink}
		if n.DistributionID != "" {
			w.Page = Link{b.details, links.SurveyDetails(n.IntegrationID, n.DistributionID)}
		}
	case microapps.NoticeSurveyStatistics:
		w.Heading = b.statHeading
		sent := parseTime(d.SentAt)
		if sent != nil {
			vals["sent"] = []Seg{{Time: sent}}
			vals["sentDay"] = []Seg{{Time: sent, Day: true}}
		}
		vals["finished"], vals["count"] = text(strconv.Itoa(d.Finished)), text(strconv.Itoa(d.Sent))
		body := b.statBody
		if r := d.ResponseRate(); r >= 0 {
			v := strconv.FormatFloat(r, 'f', 1, 64)
			if b.decimalComma {
				v = strings.Replace(v, ".", ",", 1)
			}
			vals["rate"] = fill(b.rate, map[string][]Seg{"value": text(v)})
			body += b.statRate
		}
		if expires != nil {
			body += b.statExpires
		} else {
			body += "."
		}
		w.Body = fill(body, vals)
		w.Facts = append(w.Facts, Fact{b.factSent, vals["sent"]}, Fact{b.factCompleted, fill(b.completed, vals)})
		if vals["rate"] != nil {
			w.Facts = append(w.Facts, Fact{b.factRate, vals["rate"]})
		}
		w.Context = append(w.Context, fill(b.completed, vals))
		if expires != nil {
			w.Facts = append(w.Facts, Fact{b.factExpires, vals["expires"]})
			w.Context = append(w.Context, fill(b.expiresLine, vals))
		}
		w.Qualtrics = Link{b.review, links.ReviewDistributionsURL(in, n.SurveyID, n.DistributionID)}
		if n.DistributionID != "" {
			w.Page = Link{b.data, links.DistributionData(n.IntegrationID, n.DistributionID)}
		}
	default:
		return Words{}, fmt.Errorf("unknown notification kind %q", n.Kind)
	}
	vals["heading"] = text(w.Heading)
	w.Title = fill(b.title, vals)
	w.Subject = w.Title
	if n.Kind == microapps.NoticeSurveyStatistics && vals["sentDay"] != nil {
		w.Subject = fill(b.statSubject, vals)
	}
	// The data comes from Qualtrics and integration settings: only http(s)
	// links become buttons (a javascript: link would be a gift to an
	// attacker).
	if u, ok := links.SafeHTTP(w.Qualtrics.URL); ok {
		w.Qualtrics.URL = u
	} else {
		w.Qualtrics.URL = ""
	}
	return w, nil
}

// zones caches loaded locations.
var zones sync.Map

// Zone loads an IANA zone, nil when name is empty or unknown.
func Zone(name string) *time.Location {
	if name == "" || name == "Local" || len(name) > 64 || strings.Contains(name, "..") {
		return nil
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	zones.Store(name, loc)
	return loc
}

// WithReviewLink returns notifications.data with "reviewLink" set to u (a
// statistics notification's "Review distributions" link, built when shown),
// for the clients that read data as JSON; raw unchanged when it is not an
// object.
func WithReviewLink(raw json.RawMessage, u string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return raw
	}
	v, _ := json.Marshal(u)
	m["reviewLink"] = v
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}
