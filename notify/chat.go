package notify

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/microapps/microapps"
)

// Chat messages: an Adaptive Card in the envelope of a Teams Workflows
// webhook ("When a Teams webhook request is received"), and a Block Kit
// message for a Slack incoming webhook. Both are built from texts, so they
// say what the email says.

// AdaptiveCardVersion is the schema version of the cards: Teams renders 1.5.
const AdaptiveCardVersion = "1.5"

// TeamsMessage is the body a Teams Workflows webhook accepts.
type TeamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []TeamsAttachment `json:"attachments"`
}

// TeamsAttachment carries one Adaptive Card.
type TeamsAttachment struct {
	ContentType string       `json:"contentType"` // application/vnd.microsoft.card.adaptive
	ContentURL  *string      `json:"contentUrl"`  // always null
	Content     AdaptiveCard `json:"content"`
}

// AdaptiveCard is the subset of the Adaptive Card schema the notifications use.
type AdaptiveCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"` // "AdaptiveCard"
	Version string        `json:"version"`
	Body    []CardElement `json:"body"`
	Actions []CardOpenURL `json:"actions,omitempty"`
}

// CardElement is a TextBlock or a FactSet (Type says which).
type CardElement struct {
	Type     string     `json:"type"`
	Text     string     `json:"text,omitempty"`
	Wrap     bool       `json:"wrap,omitempty"`
	Size     string     `json:"size,omitempty"`
	Weight   string     `json:"weight,omitempty"`
	IsSubtle bool       `json:"isSubtle,omitempty"`
	Spacing  string     `json:"spacing,omitempty"`
	Facts    []CardFact `json:"facts,omitempty"`
}

// CardFact is one row of a FactSet.
type CardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// CardOpenURL is an Action.OpenUrl button.
type CardOpenURL struct {
	Type  string `json:"type"` // "Action.OpenUrl"
	Title string `json:"title"`
	URL   string `json:"url"`
}

// teamsMarkdown escapes what Teams' markdown would read in text that comes
// from Qualtrics or settings (a survey name such as "*Q3* [x](…)"), with a
// backslash as CommonMark does; "<" and ">" too, so no tag is read either.
var teamsMarkdown = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, `(`, `\(`, `)`, `\)`, "`", "\\`",
	`~`, `\~`, `#`, `\#`, `|`, `\|`, `<`, `\<`, `>`, `\>`,
)

// teamsText escapes s for an Adaptive Card TextBlock or Fact in Teams; a
// leading "- ", "+ " or "1. " would start a list, so it is escaped too.
func teamsText(s string) string {
	s = teamsMarkdown.Replace(s)
	digits := strings.TrimLeft(s, "0123456789")
	switch {
	case strings.HasPrefix(s, "- "), strings.HasPrefix(s, "+ "):
		s = `\` + s
	case len(digits) < len(s) && (digits == "." || strings.HasPrefix(digits, ". ")):
		s = s[:len(s)-len(digits)] + `\` + digits
	}
	return s
}

// chatURL makes a link safe to put in a chat message: characters that end a
// Slack link (|, >) or a markdown one ()) or that no URL may carry are
// percent-encoded; the URL means the same.
var chatURLEscaper = strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", " ", "%20", `"`, "%22", "(", "%28", ")", "%29")

func chatURL(u string) string { return chatURLEscaper.Replace(u) }

func (t texts) actions() []link {
	var out []link
	for _, l := range []link{t.Button, t.Page, t.Feed} {
		if l.URL != "" {
			out = append(out, link{l.Label, chatURL(l.URL)})
		}
	}
	return out
}

// teamsMessage is the Workflows body of t.
func (t texts) teamsMessage() TeamsMessage {
	card := AdaptiveCard{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: AdaptiveCardVersion,
		Body: []CardElement{
			{Type: "TextBlock", Text: teamsText(t.Title), Wrap: true, Size: "Medium", Weight: "Bolder"},
			{Type: "TextBlock", Text: teamsText(t.Body), Wrap: true},
		},
	}
	facts := make([]CardFact, 0, len(t.Facts))
	for _, f := range t.Facts {
		if f.Value != "" {
			facts = append(facts, CardFact{Title: teamsText(f.Label), Value: teamsText(f.Value)})
		}
	}
	if len(facts) > 0 {
		card.Body = append(card.Body, CardElement{Type: "FactSet", Facts: facts})
	}
	for _, l := range t.actions() {
		card.Actions = append(card.Actions, CardOpenURL{Type: "Action.OpenUrl", Title: l.Label, URL: l.URL})
	}
	return TeamsMessage{Type: "message", Attachments: []TeamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: card}}}
}

// SlackMessage is a Block Kit message for an incoming webhook; Text is what
// Slack shows in notifications and where blocks cannot be shown. Every
// message the product sends to Slack is one: UnfurlLinks and UnfurlMedia are
// always false, so no preview of a link from Qualtrics' text is shown.
type SlackMessage struct {
	Text        string       `json:"text"`
	Blocks      []SlackBlock `json:"blocks"`
	UnfurlLinks bool         `json:"unfurl_links"`
	UnfurlMedia bool         `json:"unfurl_media"`
}

// SlackBlock is a header, section, context or actions block (Type says which).
type SlackBlock struct {
	Type     string         `json:"type"`
	Text     *SlackText     `json:"text,omitempty"`
	Elements []SlackElement `json:"elements,omitempty"`
}

// SlackText is a text object: "plain_text" or "mrkdwn". A mrkdwn object is
// always Verbatim: Slack then turns no URL, channel name or mention in the
// text (a survey name from Qualtrics) into a link; only our own <url|label>
// sequences are links (use mrkdwn to build one).
type SlackText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Emoji    *bool  `json:"emoji,omitempty"`
	Verbatim bool   `json:"verbatim,omitempty"`
}

// mrkdwn is a verbatim mrkdwn text object of text, already escaped.
func mrkdwn(text string) SlackText { return SlackText{Type: "mrkdwn", Text: text, Verbatim: true} }

// SlackElement is a context element (Type "mrkdwn": a text object) or a URL
// button (Type "button", whose Text is its plain-text label).
type SlackElement struct {
	Type     string
	Text     string
	URL      string
	ActionID string
	Style    string // "" or "primary"
}

// MarshalJSON writes the element in Block Kit's shape for its type.
func (e SlackElement) MarshalJSON() ([]byte, error) {
	if e.Type == "mrkdwn" {
		return json.Marshal(mrkdwn(e.Text))
	}
	if e.Type != "button" {
		return json.Marshal(SlackText{Type: e.Type, Text: e.Text})
	}
	no := false
	return json.Marshal(struct {
		Type     string    `json:"type"`
		Text     SlackText `json:"text"`
		URL      string    `json:"url"`
		ActionID string    `json:"action_id"`
		Style    string    `json:"style,omitempty"`
	}{e.Type, SlackText{Type: "plain_text", Text: e.Text, Emoji: &no}, e.URL, e.ActionID, e.Style})
}

// slackEscaper escapes the three characters Slack reads as control
// sequences in mrkdwn (a "<!channel>" mention, a "<url|label>" link).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackText escapes s for Slack mrkdwn.
func slackText(s string) string { return slackEscaper.Replace(s) }

// slackLink is a mrkdwn link; the URL's |, < and > are percent-encoded and its
// & escaped, the label escaped.
func slackLink(label, u string) string {
	return "<" + slackEscaper.Replace(chatURL(u)) + "|" + slackText(label) + ">"
}

// headerMax is Block Kit's limit for a header's text.
const headerMax = 150

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// slackMessage is the Block Kit body of t.
func (t texts) slackMessage() SlackMessage {
	no := false
	m := SlackMessage{Blocks: []SlackBlock{
		{Type: "header", Text: &SlackText{Type: "plain_text", Text: truncateRunes(t.Title, headerMax), Emoji: &no}},
		{Type: "section", Text: ptr(mrkdwn(slackText(t.Body)))},
	}}
	if len(t.Context) > 0 {
		ctx := SlackBlock{Type: "context"}
		for _, c := range t.Context {
			ctx.Elements = append(ctx.Elements, SlackElement{Type: "mrkdwn", Text: slackText(c)})
		}
		m.Blocks = append(m.Blocks, ctx)
	}
	var fallback strings.Builder
	fallback.WriteString(slackText(t.Title) + "\n" + slackText(t.Body))
	acts := SlackBlock{Type: "actions"}
	for i, l := range t.actions() {
		b := SlackElement{Type: "button", Text: l.Label, URL: l.URL, ActionID: "link-" + strconv.Itoa(i)}
		if i == 0 {
			b.Style = "primary"
		}
		acts.Elements = append(acts.Elements, b)
		fallback.WriteString("\n" + slackLink(l.Label, l.URL))
	}
	if len(acts.Elements) > 0 {
		m.Blocks = append(m.Blocks, acts)
	}
	m.Text = fallback.String()
	return m
}

func ptr[T any](v T) *T { return &v }

// chatBody is the JSON body of a "slack" or "teams" webhook.
func (t texts) chatBody(format microapps.WebhookFormat) ([]byte, error) {
	if format == microapps.WebhookSlack {
		return json.Marshal(t.slackMessage())
	}
	return json.Marshal(t.teamsMessage())
}
