package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // containers often lack /usr/share/zoneinfo; users' zones must still load

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/store"
)

// Data is notifications.data, whatever the kind; the pages read the same
// keys.
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

// fact is one label and value of a notification (survey, group, due date…).
type fact struct{ Label, Value string }

// link is a labelled absolute http(s) URL; URL "" means none.
type link struct{ Label, URL string }

// texts is a notification put into words in one language: the one place
// that writes them, for emails and chat messages alike.
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

type phrasebook struct {
	newTitle, newBody, newBodyNoDate          string
	expTitle, expBody                         string
	statTitle, statSubject                    string
	statBody, statRate, statExpires           string
	factSurvey, factGroup, factDue, factSent  string
	factCompleted, factRate, factExpires      string
	rateValue                                 string
	dueLine, expiresLine, sentLine            string
	respond, review, data, feed, footer, stop string
	days, months                              []string
	dateLayout, dayLayout                     string
	decimalComma                              bool
}

var phrasebooks = map[string]phrasebook{
	"en": {
		newTitle:      "New survey: %s",
		newBody:       "You have received a new survey request: %s (%s), due on %s.",
		newBodyNoDate: "You have received a new survey request: %s (%s).",
		expTitle:      "Survey about to expire: %s",
		expBody:       "Your survey %s (%s) expires on %s and you have not finished it yet.",
		statTitle:     "Survey statistics: %s",
		statSubject:   "Survey statistics: %s (sent %s)",
		statBody:      "%s (%s) sent %s: %d of %d completed",
		statRate:      " (%s%% response rate)",
		statExpires:   ". The link expires on %s.",
		factSurvey:    "Survey",
		factGroup:     "Functional group",
		factDue:       "Due",
		factSent:      "Sent",
		factCompleted: "Completed",
		factRate:      "Response rate",
		rateValue:     "%s%%",
		factExpires:   "Link expires",
		dueLine:       "Due %s",
		expiresLine:   "Link expires %s",
		sentLine:      "%d of %d completed",
		respond:       "Respond to survey in Qualtrics",
		review:        "Review distributions",
		data:          "Distribution data",
		feed:          "See your notifications",
		footer:        "You receive this email because a Qualtrics survey concerns you.",
		stop:          "Stop these emails",
		dateLayout:    "Mon 2 Jan 2006, 15:04 MST",
		dayLayout:     "2 Jan 2006",
	},
	"fr": frenchTypography(phrasebook{
		newTitle:      "Nouvelle enquête : %s",
		newBody:       "Vous avez reçu une nouvelle demande d'enquête : %s (%s), à remplir avant le %s.",
		newBodyNoDate: "Vous avez reçu une nouvelle demande d'enquête : %s (%s).",
		expTitle:      "Enquête bientôt expirée : %s",
		expBody:       "Votre enquête %s (%s) expire le %s et vous ne l'avez pas encore terminée.",
		statTitle:     "Statistiques de l'enquête : %s",
		statSubject:   "Statistiques de l'enquête : %s (envoyée le %s)",
		statBody:      "%s (%s) envoyée le %s : %d sur %d terminées",
		statRate:      " (taux de réponse %s %%)",
		statExpires:   ". Le lien expire le %s.",
		factSurvey:    "Enquête",
		factGroup:     "Groupe fonctionnel",
		factDue:       "À remplir avant le",
		factSent:      "Envoyée le",
		factCompleted: "Terminées",
		factRate:      "Taux de réponse",
		rateValue:     "%s %%",
		factExpires:   "Le lien expire le",
		dueLine:       "À remplir avant le %s",
		expiresLine:   "Le lien expire le %s",
		sentLine:      "%d sur %d terminées",
		respond:       "Répondre à l'enquête dans Qualtrics",
		review:        "Voir les distributions",
		data:          "Données de la distribution",
		feed:          "Voir vos notifications",
		footer:        "Vous recevez ce courriel parce qu'une enquête Qualtrics vous concerne.",
		stop:          "Ne plus recevoir ces courriels",
		days:          []string{"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."},
		months:        []string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."},
		dateLayout:    "Mon 2 Jan 2006 à 15:04 MST",
		dayLayout:     "2 Jan 2006",
		decimalComma:  true,
	}),
}

// French typography: a no-break space before ":" and inside « », a narrow
// no-break space before ";", "?", "!" and "%".
const (
	nbsp       = "\u00a0"
	narrowNbsp = "\u202f"
)

var frenchSpaces = strings.NewReplacer(" :", nbsp+":", " ;", narrowNbsp+";", " ?", narrowNbsp+"?", " !", narrowNbsp+"!",
	" %%", narrowNbsp+"%%", "« ", "«"+nbsp, " »", nbsp+"»")

// frenchTypography puts the no-break spaces into every phrase of pb.
func frenchTypography(pb phrasebook) phrasebook {
	for _, p := range []*string{&pb.newTitle, &pb.newBody, &pb.newBodyNoDate, &pb.expTitle, &pb.expBody, &pb.statTitle,
		&pb.statSubject, &pb.statBody, &pb.statRate, &pb.statExpires, &pb.dueLine, &pb.expiresLine, &pb.sentLine,
		&pb.rateValue} {
		*p = frenchSpaces.Replace(*p)
	}
	return pb
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
		if _, ok := phrasebooks[l]; ok {
			r.lang = l
			break
		}
	}
	for _, z := range []string{w.User.TimeZone, w.Defaults.TimeZone} {
		if loc := loadZone(z); loc != nil {
			r.loc = loc
			break
		}
	}
	return r
}

// zoneCache keeps loaded locations: a zone is looked up per delivery.
var zoneCache sync.Map

// loadZone loads an IANA zone, nil when name is empty or unknown.
func loadZone(name string) *time.Location {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	zoneCache.Store(name, loc)
	return loc
}

// date formats an RFC 3339 time for the reader; "" when there is none.
func (pb phrasebook) date(s *string, layout string, loc *time.Location) string {
	if s == nil {
		return ""
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return *s
	}
	t = t.In(loc)
	out := t.Format(layout)
	if pb.months != nil {
		// Go formats English names: put the reader's in their place.
		out = strings.Replace(out, t.Format("Jan"), pb.months[t.Month()-1], 1)
		if strings.Contains(layout, "Mon") {
			out = strings.Replace(out, t.Format("Mon"), pb.days[t.Weekday()], 1)
		}
	}
	return out
}

// compose writes notification w in the reader's language: the one place
// that builds the words and links of emails and chat messages.
func (n *Notifier) compose(w store.DeliveryWork, r reader) (texts, error) {
	nt := w.Notification
	var d Data
	if err := json.Unmarshal(nt.Data, &d); err != nil {
		return texts{}, fmt.Errorf("notification data: %w", err)
	}
	pb, ok := phrasebooks[r.lang]
	if !ok {
		r.lang, pb = "en", phrasebooks["en"]
	}
	date := func(s *string) string { return pb.date(s, pb.dateLayout, r.loc) }
	group := d.FunctionalGroup
	t := texts{lang: r.lang, Footer: pb.footer,
		Feed:     link{pb.feed, links.Absolute(n.o.PublicURL, links.Feed)},
		Settings: link{pb.stop, links.Absolute(n.o.PublicURL, links.EmailSettings)}}
	t.Facts = append(t.Facts, fact{pb.factSurvey, d.SurveyName})
	if group != "" {
		t.Facts = append(t.Facts, fact{pb.factGroup, group})
		t.Context = append(t.Context, group)
	}
	switch nt.Kind {
	case KindNewSurvey, KindSurveyExpiring:
		due := date(d.ExpiresAt)
		switch {
		case nt.Kind == KindSurveyExpiring:
			t.Title = fmt.Sprintf(pb.expTitle, d.SurveyName)
			t.Body = fmt.Sprintf(pb.expBody, d.SurveyName, group, due)
		case due != "":
			t.Title = fmt.Sprintf(pb.newTitle, d.SurveyName)
			t.Body = fmt.Sprintf(pb.newBody, d.SurveyName, group, due)
		default:
			t.Title = fmt.Sprintf(pb.newTitle, d.SurveyName)
			t.Body = fmt.Sprintf(pb.newBodyNoDate, d.SurveyName, group)
		}
		t.Subject = t.Title
		if due != "" {
			t.Facts = append(t.Facts, fact{pb.factDue, due})
			t.Context = append(t.Context, fmt.Sprintf(pb.dueLine, due))
		}
		t.Button = link{pb.respond, d.RespondLink}
	case KindSurveyStatistics:
		t.Title = fmt.Sprintf(pb.statTitle, d.SurveyName)
		t.Subject = fmt.Sprintf(pb.statSubject, d.SurveyName, pb.date(d.SentAt, pb.dayLayout, r.loc))
		var b strings.Builder
		fmt.Fprintf(&b, pb.statBody, d.SurveyName, group, date(d.SentAt), d.Finished, d.Sent)
		rate := ""
		if v := d.ResponseRate(); v >= 0 {
			rate = strconv.FormatFloat(v, 'f', 1, 64)
			if pb.decimalComma {
				rate = strings.Replace(rate, ".", ",", 1)
			}
			fmt.Fprintf(&b, pb.statRate, rate)
		}
		fmt.Fprintf(&b, pb.statExpires, date(d.ExpiresAt))
		t.Body = b.String()
		t.Facts = append(t.Facts, fact{pb.factSent, date(d.SentAt)},
			fact{pb.factCompleted, fmt.Sprintf(pb.sentLine, d.Finished, d.Sent)})
		if rate != "" {
			t.Facts = append(t.Facts, fact{pb.factRate, fmt.Sprintf(pb.rateValue, rate)})
		}
		t.Facts = append(t.Facts, fact{pb.factExpires, date(d.ExpiresAt)})
		t.Context = append(t.Context, fmt.Sprintf(pb.sentLine, d.Finished, d.Sent), fmt.Sprintf(pb.expiresLine, date(d.ExpiresAt)))
		t.Button = link{pb.review, links.ReviewDistributionsURL(
			links.Integration{BaseURL: w.BaseURL, BrandBaseURL: w.BrandBaseURL, DeepLinks: w.DeepLinks},
			nt.SurveyID, nt.DistributionID)}
		if nt.DistributionID != "" {
			t.Page = link{pb.data, links.Absolute(n.o.PublicURL, links.DistributionData(nt.IntegrationID, nt.DistributionID))}
		}
	default:
		return texts{}, fmt.Errorf("unknown notification kind %q", nt.Kind)
	}
	// The data comes from Qualtrics and integration settings: only http(s)
	// links become buttons (a javascript: link would be a gift to an
	// attacker).
	var ok2 bool
	if t.Button.URL, ok2 = links.SafeHTTP(t.Button.URL); !ok2 {
		t.Button.URL = ""
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
