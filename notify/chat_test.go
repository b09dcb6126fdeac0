package notify_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/store"
)

// hostileName has every character Slack mrkdwn or Teams markdown reads.
const hostileName = "Q3 <b>pulse</b> & *bold* _it_ <!channel> [x](https://evil.example/)"

// pipeLink is a respondent link with a "|", which would end a Slack link.
const pipeLink = "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1_CID_1|x&Q_CHL=email"

// chatWorld raises one notification of each kind in a new integration whose
// webhook posts to a recorder in format, written in lang (the integration's
// default), and returns the body posted for each kind.
func chatWorld(t *testing.T, f *fixture, format microapps.WebhookFormat, lang, zone string) (integ string, bodies map[string][]byte) {
	t.Helper()
	var mu sync.Mutex
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = b
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	integ = f.integration(integrationRow{Admins: []string{"boss@example.com"}, BrandBaseURL: "https://acme.qualtrics.com"})
	if err := f.s.SetWebhook(f.ctx, integ, store.Webhook{URL: srv.URL + "/hook", Format: format}, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetNotificationDefaults(f.ctx, integ, store.NotificationDefaults{Language: lang, TimeZone: zone},
		store.AuditEvent{Actor: "test", Action: "notifications.set"}); err != nil {
		t.Fatal(err)
	}
	f.survey(integ, surveyRow{ID: "SV_1", Name: hostileName})
	f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1", LinkExpiration: at(200 * h)})
	f.dist(integ, distRow{ID: "EMD_2", SurveyID: "SV_1", LinkExpiration: at(20 * h), Sent: 8, Finished: 2})
	f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", Link: pipeLink})
	f.recip(integ, recipRow{Dist: "EMD_2", Contact: "CID_2", Survey: "SV_1", Email: "bob@example.com", Link: pipeLink,
		LinkExpiration: at(20 * h)})

	public, _ := url.Parse("https://surveys.example.com/")
	n := notify.New(notify.Options{Store: f.s, PublicURL: public, WebhookAllowedHosts: []string{"127.0.0.1"}, Jobs: insertOnlyRiver(t, f.s)})
	if raised := onChanges(t, f, n, integ, []store.Change{delivered("EMD_1", "CID_1")}, t0); raised != 1 {
		t.Fatalf("new_survey raised %d", raised)
	}
	if raised, err := n.CheckWindows(f.ctx, integ, t0); err != nil || raised != 2 {
		t.Fatalf("time-based raised %d, %v", raised, err)
	}
	list, err := f.s.ListDeliveries(f.ctx, integ, 10)
	if err != nil {
		t.Fatal(err)
	}
	bodies = map[string][]byte{}
	for _, d := range list {
		if d.Channel != "webhook" {
			continue
		}
		if err := n.Deliver(f.ctx, d.ID, false, t0); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		bodies[string(d.Kind)] = got
		mu.Unlock()
	}
	if len(bodies) != 3 {
		t.Fatalf("bodies for %d kinds, want 3", len(bodies))
	}
	return integ, bodies
}

// strict decodes b into v refusing unknown fields: the test knows every
// field a body may carry.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

type wantChat struct {
	title, body  string   // as the reader sees them
	facts        []string // "label=value"
	context      []string
	buttons      []string // "label=url"
	noTeamsFacts bool
}

func chatWants(lang, integ string) map[string]wantChat {
	respond := "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1_CID_1%7Cx&Q_CHL=email"
	feed := "https://surveys.example.com/notifications"
	data := "https://surveys.example.com/admin/distributions/" + integ + "/EMD_2"
	review := "https://acme.qualtrics.com/Q/MyProjectsSection"
	const nb, nnb = "\u00a0", "\u202f"
	if lang == "fr" {
		return map[string]wantChat{
			"new_survey": {
				title:   "Nouvelle enquête" + nb + ": " + hostileName,
				body:    "Vous avez reçu une nouvelle demande d’enquête" + nb + ": " + hostileName + ", à remplir avant le 10 mars 2026, 21:00 CET.",
				facts:   []string{"Enquête=" + hostileName, "Groupe fonctionnel=Sales", "À remplir avant le=10 mars 2026, 21:00 CET"},
				context: []string{"Sales", "À remplir avant le 10 mars 2026, 21:00 CET"},
				buttons: []string{"Répondre à l’enquête dans Qualtrics=" + respond, "Voir vos notifications=" + feed},
			},
			"survey_expiring": {
				title:   "Enquête bientôt expirée" + nb + ": " + hostileName,
				body:    hostileName + " expire le 3 mars 2026, 09:00 CET et vous ne l’avez pas encore terminée.",
				facts:   []string{"Enquête=" + hostileName, "Groupe fonctionnel=Sales", "À remplir avant le=3 mars 2026, 09:00 CET"},
				context: []string{"Sales", "À remplir avant le 3 mars 2026, 09:00 CET"},
				buttons: []string{"Répondre à l’enquête dans Qualtrics=" + respond, "Voir vos notifications=" + feed},
			},
			"survey_statistics": {
				title: "Statistiques de l’enquête" + nb + ": " + hostileName,
				body: hostileName + " envoyée le 27 févr. 2026, 13:00 CET" + nb + ": 2 sur 8 terminées (taux de réponse 25,0" + nnb +
					"%). Le lien expire le 3 mars 2026, 09:00 CET.",
				facts: []string{"Enquête=" + hostileName, "Groupe fonctionnel=Sales", "Envoyée le=27 févr. 2026, 13:00 CET",
					"Terminées=2 sur 8 terminées", "Taux de réponse=25,0" + nnb + "%", "Le lien expire le=3 mars 2026, 09:00 CET"},
				context: []string{"Sales", "2 sur 8 terminées", "Le lien expire le 3 mars 2026, 09:00 CET"},
				buttons: []string{"Voir les distributions=" + review, "Données de la distribution=" + data, "Voir vos notifications=" + feed},
			},
		}
	}
	return map[string]wantChat{
		"new_survey": {
			title:   "New survey: " + hostileName,
			body:    "You have received a new survey request: " + hostileName + ", due on 10 Mar 2026, 20:00 UTC.",
			facts:   []string{"Survey=" + hostileName, "Functional group=Sales", "Due=10 Mar 2026, 20:00 UTC"},
			context: []string{"Sales", "Due 10 Mar 2026, 20:00 UTC"},
			buttons: []string{"Respond to survey in Qualtrics=" + respond, "See your notifications=" + feed},
		},
		"survey_expiring": {
			title:   "Survey about to expire: " + hostileName,
			body:    hostileName + " expires on 3 Mar 2026, 08:00 UTC and you have not finished it yet.",
			facts:   []string{"Survey=" + hostileName, "Functional group=Sales", "Due=3 Mar 2026, 08:00 UTC"},
			context: []string{"Sales", "Due 3 Mar 2026, 08:00 UTC"},
			buttons: []string{"Respond to survey in Qualtrics=" + respond, "See your notifications=" + feed},
		},
		"survey_statistics": {
			title: "Survey statistics: " + hostileName,
			body: hostileName + " sent 27 Feb 2026, 12:00 UTC: 2 of 8 completed (25.0% response rate). " +
				"The link expires on 3 Mar 2026, 08:00 UTC.",
			facts: []string{"Survey=" + hostileName, "Functional group=Sales", "Sent=27 Feb 2026, 12:00 UTC",
				"Completed=2 of 8 completed", "Response rate=25.0%", "Link expires=3 Mar 2026, 08:00 UTC"},
			context: []string{"Sales", "2 of 8 completed", "Link expires 3 Mar 2026, 08:00 UTC"},
			buttons: []string{"Review distributions=" + review, "Distribution data=" + data, "See your notifications=" + feed},
		},
	}
}

// The escapes the test expects, written out rather than computed by the
// code under test.
var (
	slackEscaped = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	teamsEscaped = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, `(`, `\(`, `)`, `\)`,
		"`", "\\`", `~`, `\~`, `#`, `\#`, `|`, `\|`, `<`, `\<`, `>`, `\>`)
)

func TestSlackMessagesAreBlockKitWithEscapedText(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			zone := ""
			if lang == "fr" {
				zone = "Europe/Paris"
			}
			integ, bodies := chatWorld(t, f, "slack", lang, zone)
			for kind, want := range chatWants(lang, integ) {
				t.Run(kind, func(t *testing.T) {
					type text struct {
						Type     string `json:"type"`
						Text     string `json:"text"`
						Emoji    *bool  `json:"emoji"`
						Verbatim *bool  `json:"verbatim"`
					}
					type element struct {
						Type     string          `json:"type"`
						Text     json.RawMessage `json:"text"`
						URL      string          `json:"url"`
						ActionID string          `json:"action_id"`
						Style    string          `json:"style"`
						Verbatim *bool           `json:"verbatim"`
					}
					var msg struct {
						Text   string `json:"text"`
						Blocks []struct {
							Type     string    `json:"type"`
							Text     *text     `json:"text"`
							Elements []element `json:"elements"`
						} `json:"blocks"`
						UnfurlLinks *bool `json:"unfurl_links"`
						UnfurlMedia *bool `json:"unfurl_media"`
					}
					strict(t, bodies[kind], &msg)
					// Issue 31, item 7: Slack turned a URL in a survey name
					// into a link, and unfurled it, in the trusted bot's
					// message. Every mrkdwn text object is verbatim, and the
					// message asks for no unfurling.
					if msg.UnfurlLinks == nil || *msg.UnfurlLinks || msg.UnfurlMedia == nil || *msg.UnfurlMedia {
						t.Errorf("unfurl_links %v, unfurl_media %v; want both false", msg.UnfurlLinks, msg.UnfurlMedia)
					}
					if n := unverbatimMrkdwn(bodies[kind]); n != 0 {
						t.Errorf("%d mrkdwn text objects without \"verbatim\": true:\n%s", n, bodies[kind])
					}
					keepSample(t, "slack-"+lang+"-"+kind+".json", bodies[kind])
					if len(msg.Blocks) != 4 {
						t.Fatalf("%d blocks, want header, section, context, actions:\n%s", len(msg.Blocks), bodies[kind])
					}
					h, s, c, a := msg.Blocks[0], msg.Blocks[1], msg.Blocks[2], msg.Blocks[3]
					if h.Type != "header" || h.Text == nil || h.Text.Type != "plain_text" || h.Text.Text != want.title {
						t.Errorf("header %+v, want plain text %q", h.Text, want.title)
					}
					if s.Type != "section" || s.Text == nil || s.Text.Type != "mrkdwn" || s.Text.Text != slackEscaped.Replace(want.body) {
						t.Errorf("section %+v, want mrkdwn %q", s.Text, slackEscaped.Replace(want.body))
					}
					if strings.Contains(s.Text.Text, "<!channel>") || strings.Contains(s.Text.Text, "<b>") {
						t.Error("the section carries a Slack control sequence from the survey name")
					}
					if c.Type != "context" || len(c.Elements) != len(want.context) {
						t.Fatalf("context %+v, want %q", c, want.context)
					}
					for i, e := range c.Elements {
						var tx string
						if err := json.Unmarshal(e.Text, &tx); err != nil || e.Type != "mrkdwn" || tx != slackEscaped.Replace(want.context[i]) {
							t.Errorf("context element %d: %s %s, want mrkdwn %q", i, e.Type, e.Text, want.context[i])
						}
					}
					if a.Type != "actions" || len(a.Elements) != len(want.buttons) {
						t.Fatalf("actions %+v, want %q", a, want.buttons)
					}
					fallback := slackEscaped.Replace(want.title) + "\n" + slackEscaped.Replace(want.body)
					for i, e := range a.Elements {
						var label text
						if err := json.Unmarshal(e.Text, &label); err != nil {
							t.Fatal(err)
						}
						lbl, u, _ := strings.Cut(want.buttons[i], "=")
						if e.Type != "button" || label.Type != "plain_text" || label.Text != lbl || e.URL != u || e.ActionID == "" {
							t.Errorf("button %d: %+v %+v, want %q", i, e, label, want.buttons[i])
						}
						if strings.Contains(e.URL, "|") {
							t.Errorf("button %d URL %q keeps a |", i, e.URL)
						}
						fallback += "\n<" + slackEscaped.Replace(u) + "|" + slackEscaped.Replace(lbl) + ">"
					}
					if a.Elements[0].Style != "primary" {
						t.Error("the first button is not the primary one")
					}
					if msg.Text != fallback {
						t.Errorf("fallback text\n%q\nwant\n%q", msg.Text, fallback)
					}
				})
			}
		})
	}
}

// unverbatimMrkdwn counts the mrkdwn text objects anywhere in a Slack body
// that lack "verbatim": true.
func unverbatimMrkdwn(body []byte) int {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return -1
	}
	n, mrkdwn := 0, 0
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				mrkdwn++
				if x["verbatim"] != true {
					n++
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	if mrkdwn == 0 {
		return -1 // nothing checked: the test would prove nothing
	}
	return n
}

// teamsCard is the Workflows envelope as a test reads it.
type teamsCard struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string  `json:"contentType"`
		ContentURL  *string `json:"contentUrl"`
		Content     struct {
			Schema  string `json:"$schema"`
			Type    string `json:"type"`
			Version string `json:"version"`
			Body    []struct {
				Type   string `json:"type"`
				Text   string `json:"text"`
				Wrap   bool   `json:"wrap"`
				Size   string `json:"size"`
				Weight string `json:"weight"`
				Facts  []struct {
					Title string `json:"title"`
					Value string `json:"value"`
				} `json:"facts"`
			} `json:"body"`
			Actions []struct {
				Type  string `json:"type"`
				Title string `json:"title"`
				URL   string `json:"url"`
			} `json:"actions"`
		} `json:"content"`
	} `json:"attachments"`
}

func TestTeamsMessagesAreAdaptiveCardsInTheWorkflowsEnvelope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			zone := ""
			if lang == "fr" {
				zone = "Europe/Paris"
			}
			integ, bodies := chatWorld(t, f, "teams", lang, zone)
			for kind, want := range chatWants(lang, integ) {
				t.Run(kind, func(t *testing.T) {
					var m teamsCard
					strict(t, bodies[kind], &m)
					keepSample(t, "teams-"+lang+"-"+kind+".json", bodies[kind])
					if m.Type != "message" || len(m.Attachments) != 1 {
						t.Fatalf("envelope type %q with %d attachments", m.Type, len(m.Attachments))
					}
					att := m.Attachments[0]
					card := att.Content
					if att.ContentType != "application/vnd.microsoft.card.adaptive" || att.ContentURL != nil ||
						card.Type != "AdaptiveCard" || (card.Version != "1.5" && card.Version != "1.4") {
						t.Fatalf("attachment %s, card %s %s", att.ContentType, card.Type, card.Version)
					}
					if len(card.Body) != 3 {
						t.Fatalf("%d body elements, want title, text, facts", len(card.Body))
					}
					title, text, facts := card.Body[0], card.Body[1], card.Body[2]
					if title.Type != "TextBlock" || !title.Wrap || title.Weight != "Bolder" || title.Text != teamsEscaped.Replace(want.title) {
						t.Errorf("title %+v, want %q", title, teamsEscaped.Replace(want.title))
					}
					if text.Type != "TextBlock" || !text.Wrap || text.Text != teamsEscaped.Replace(want.body) {
						t.Errorf("text %q, want %q", text.Text, teamsEscaped.Replace(want.body))
					}
					if strings.Contains(text.Text, "](https://evil") || strings.Contains(text.Text, " *bold*") {
						t.Error("markdown from the survey name is left active")
					}
					if facts.Type != "FactSet" || len(facts.Facts) != len(want.facts) {
						t.Fatalf("facts %+v, want %q", facts, want.facts)
					}
					for i, fc := range facts.Facts {
						l, v, _ := strings.Cut(want.facts[i], "=")
						if fc.Title != teamsEscaped.Replace(l) || fc.Value != teamsEscaped.Replace(v) {
							t.Errorf("fact %d %q=%q, want %q=%q", i, fc.Title, fc.Value, teamsEscaped.Replace(l), teamsEscaped.Replace(v))
						}
					}
					if len(card.Actions) != len(want.buttons) {
						t.Fatalf("actions %+v, want %q", card.Actions, want.buttons)
					}
					for i, a := range card.Actions {
						l, u, _ := strings.Cut(want.buttons[i], "=")
						if a.Type != "Action.OpenUrl" || a.Title != l || a.URL != u {
							t.Errorf("action %d %+v, want %q", i, a, want.buttons[i])
						}
					}
				})
			}
		})
	}
}

// keepSample writes a message the test produced into
// $MICROAPPS_MESSAGES_DIR, when set, for docs/render-messages.sh to picture.
func keepSample(t *testing.T, name string, body []byte) {
	t.Helper()
	dir := os.Getenv("MICROAPPS_MESSAGES_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The JSON format's data carries the statistics' review link built as the
// pages build it (the raise stores none).
func TestJSONWebhookCarriesThePagesReviewLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, bodies := chatWorld(t, f, "json", "", "")
	var p struct {
		Kind string         `json:"kind"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(bodies["survey_statistics"], &p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != "survey_statistics" || p.Data["reviewLink"] != "https://acme.qualtrics.com/Q/MyProjectsSection" || p.Data["sent"] != float64(8) {
		t.Fatalf("payload %+v", p)
	}
	var q struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(bodies["new_survey"], &q); err != nil || q.Data["reviewLink"] != nil || q.Data["respondLink"] != pipeLink {
		t.Fatalf("new survey payload %+v, %v", q, err)
	}
}
