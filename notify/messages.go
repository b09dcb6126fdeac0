package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// texts is a notification put into words in one language.
type texts struct {
	lang        string
	Subject     string
	Body        string
	ButtonLabel string
	ButtonURL   string
	FeedLabel   string
	Footer      string
}

type phrasebook struct {
	newTitle, newBody, newBodyNoDate           string
	expTitle, expBody                          string
	statTitle, statBody, statRate, statExpires string
	respond, review, feed, footer              string
	dateLayout                                 string
}

var phrasebooks = map[string]phrasebook{
	"en": {
		newTitle:      "New survey: %s",
		newBody:       "You have received a new survey request: %s (%s), due on %s.",
		newBodyNoDate: "You have received a new survey request: %s (%s).",
		expTitle:      "Survey about to expire: %s",
		expBody:       "Your survey %s (%s) expires on %s and you have not finished it yet.",
		statTitle:     "Survey statistics: %s",
		statBody:      "%s (%s) sent %s: %d of %d completed",
		statRate:      " (%s%% response rate)",
		statExpires:   ". The link expires on %s.",
		respond:       "Respond to survey in Qualtrics",
		review:        "Review distributions",
		feed:          "See your notifications",
		footer:        "You receive this email because a Qualtrics survey concerns you.",
		dateLayout:    "Mon 2 Jan 2006, 15:04 MST",
	},
	"fr": {
		newTitle:      "Nouvelle enquête : %s",
		newBody:       "Vous avez reçu une nouvelle demande d'enquête : %s (%s), à remplir avant le %s.",
		newBodyNoDate: "Vous avez reçu une nouvelle demande d'enquête : %s (%s).",
		expTitle:      "Enquête bientôt expirée : %s",
		expBody:       "Votre enquête %s (%s) expire le %s et vous ne l'avez pas encore terminée.",
		statTitle:     "Statistiques de l'enquête : %s",
		statBody:      "%s (%s) envoyée le %s : %d sur %d terminées",
		statRate:      " (taux de réponse %s %%)",
		statExpires:   ". Le lien expire le %s.",
		respond:       "Répondre à l'enquête dans Qualtrics",
		review:        "Voir les distributions",
		feed:          "Voir vos notifications",
		footer:        "Vous recevez ce courriel parce qu'une enquête Qualtrics vous concerne.",
		dateLayout:    "02/01/2006 15:04 MST",
	},
}

func (n *Notifier) texts(kind string, raw json.RawMessage) (texts, error) {
	var d Data
	if err := json.Unmarshal(raw, &d); err != nil {
		return texts{}, fmt.Errorf("notification data: %w", err)
	}
	lang := n.o.Language
	pb, ok := phrasebooks[lang]
	if !ok {
		lang, pb = "en", phrasebooks["en"]
	}
	date := func(s *string) string {
		if s == nil {
			return ""
		}
		t, err := time.Parse(time.RFC3339, *s)
		if err != nil {
			return *s
		}
		return t.UTC().Format(pb.dateLayout)
	}
	group := d.FunctionalGroup
	t := texts{lang: lang, FeedLabel: pb.feed, Footer: pb.footer}
	switch kind {
	case KindNewSurvey:
		t.Subject = fmt.Sprintf(pb.newTitle, d.SurveyName)
		if d.ExpiresAt != nil {
			t.Body = fmt.Sprintf(pb.newBody, d.SurveyName, group, date(d.ExpiresAt))
		} else {
			t.Body = fmt.Sprintf(pb.newBodyNoDate, d.SurveyName, group)
		}
		t.ButtonLabel, t.ButtonURL = pb.respond, d.RespondLink
	case KindSurveyExpiring:
		t.Subject = fmt.Sprintf(pb.expTitle, d.SurveyName)
		t.Body = fmt.Sprintf(pb.expBody, d.SurveyName, group, date(d.ExpiresAt))
		t.ButtonLabel, t.ButtonURL = pb.respond, d.RespondLink
	case KindSurveyStatistics:
		t.Subject = fmt.Sprintf(pb.statTitle, d.SurveyName)
		var b strings.Builder
		fmt.Fprintf(&b, pb.statBody, d.SurveyName, group, date(d.SentAt), d.Finished, d.Sent)
		if r := d.ResponseRate(); r >= 0 {
			rate := strconv.FormatFloat(r, 'f', 1, 64)
			if lang == "fr" {
				rate = strings.Replace(rate, ".", ",", 1)
			}
			fmt.Fprintf(&b, pb.statRate, rate)
		}
		fmt.Fprintf(&b, pb.statExpires, date(d.ExpiresAt))
		t.Body = b.String()
		t.ButtonLabel, t.ButtonURL = pb.review, d.ReviewLink
	default:
		return texts{}, fmt.Errorf("unknown notification kind %q", kind)
	}
	if t.ButtonURL != "" && !safeLink(t.ButtonURL) {
		t.ButtonURL = ""
	}
	return t, nil
}

// safeLink accepts only http(s) links for buttons: the data comes from
// Qualtrics and integration settings, and a javascript: link in an email would
// be a gift to an attacker.
func safeLink(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// plain is the text/plain part of an email.
func (t texts) plain(feedURL string) string {
	var b strings.Builder
	b.WriteString(t.Body)
	b.WriteString("\n\n")
	if t.ButtonURL != "" {
		fmt.Fprintf(&b, "%s:\n%s\n\n", t.ButtonLabel, t.ButtonURL)
	}
	fmt.Fprintf(&b, "%s:\n%s\n\n-- \n%s\n", t.FeedLabel, feedURL, t.Footer)
	return b.String()
}

// chat is the text of a Slack or Teams message.
func (t texts) chat(format, feedURL string) string {
	link := func(label, u string) string {
		if format == "slack" {
			return "<" + u + "|" + label + ">"
		}
		return "[" + label + "](" + u + ")"
	}
	var b strings.Builder
	if format == "slack" {
		b.WriteString("*" + t.Subject + "*\n")
	} else {
		b.WriteString("**" + t.Subject + "**\n\n")
	}
	b.WriteString(t.Body)
	if t.ButtonURL != "" {
		b.WriteString("\n" + link(t.ButtonLabel, t.ButtonURL))
	}
	b.WriteString("\n" + link(t.FeedLabel, feedURL))
	return b.String()
}
