package manage

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// IntegrationWrite is a change to an integration: the body of the REST API's POST and
// PATCH, and what the console's forms are turned into. Pointers tell "absent" from
// "zero" so PATCH changes only what it names.
type IntegrationWrite struct {
	Name                  *string           `json:"name"`
	FunctionalGroup       *string           `json:"functionalGroup"`
	BaseURL               *string           `json:"baseUrl"`
	Token                 *string           `json:"token"`
	OAuth                 *OAuthWrite       `json:"oauth"`
	Icon                  *string           `json:"icon"`
	RateLimit             *RateLimitWrite   `json:"rateLimit"`
	RequestTimeoutSeconds *int              `json:"requestTimeoutSeconds"`
	Logging               *EnabledWrite     `json:"logging"`
	Schedule              *ScheduleWrite    `json:"schedule"`
	Events                *EnabledWrite     `json:"events"`
	Veto                  *VetoWrite        `json:"veto"`
	DeepLinks             map[string]string `json:"deepLinks"`
	Status                *string           `json:"status"`
}

type OAuthWrite struct {
	ClientID     *string `json:"clientId"`
	ClientSecret *string `json:"clientSecret"`
	Scope        *string `json:"scope"`
}

type RateLimitWrite struct {
	Enabled           *bool `json:"enabled"`
	RequestsPerMinute *int  `json:"requestsPerMinute"`
}

type EnabledWrite struct {
	Enabled *bool `json:"enabled"`
}

type ScheduleWrite struct {
	FullSyncEvery        *string         `json:"fullSyncEvery"`
	IncrementalSyncEvery *string         `json:"incrementalSyncEvery"`
	VerifyEvery          *string         `json:"verifyEvery"`
	FullSyncWindow       json.RawMessage `json:"fullSyncWindow"` // null clears it
}

// VetoWrite is the sync veto rule: a run that would remove more
// than MaxDeletePercent of the integration's live rows of a kind and more
// than MinRows of them removes nothing.
type VetoWrite struct {
	MaxDeletePercent *int `json:"maxDeletePercent"`
	MinRows          *int `json:"minRows"`
}

type WindowWrite struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	TimeZone string `json:"timeZone"`
}

// Icons bundled with the pages; an integration picks one by name.
var icons = map[string]bool{"clipboard": true, "chart": true, "megaphone": true, "people": true,
	"star": true, "heart": true, "briefcase": true, "globe": true}

// deepLinkKeys are the deep-link templates an integration may override, and
// the placeholders each may use.
var deepLinkKeys = map[string][]string{
	"results":             {"{host}", "{surveyId}"},
	"reviewDistributions": {"{host}", "{surveyId}", "{distributionId}"},
	"survey":              {"{host}", "{surveyId}"},
}

// apply validates w and applies it to in. creating says every required field
// must be present. It returns the credential change, if any; nothing is
// written anywhere.
func (s *Service) apply(w *IntegrationWrite, in *store.Integration, creating bool) (*credentialChange, []microapps.FieldError) {
	var errs []microapps.FieldError
	bad := func(field, msg string) { errs = append(errs, microapps.FieldError{Field: field, Message: msg}) }

	if w.Name != nil {
		n := strings.TrimSpace(*w.Name)
		switch l := utf8.RuneCountInString(n); {
		case l == 0:
			bad("name", "must not be empty")
		case l > 200:
			bad("name", "must be at most 200 characters")
		default:
			in.Name = n
		}
	} else if creating {
		bad("name", "is required")
	}
	if w.FunctionalGroup != nil {
		g := strings.TrimSpace(*w.FunctionalGroup)
		if utf8.RuneCountInString(g) > 200 {
			bad("functionalGroup", "must be at most 200 characters")
		} else {
			in.FunctionalGroup = g
		}
	}
	if creating && in.FunctionalGroup == "" {
		in.FunctionalGroup = in.Name
	}
	if w.BaseURL != nil {
		u, err := qualtrics.NormalizeBaseURL(*w.BaseURL, s.o.AllowedHosts)
		if err != nil {
			bad("baseUrl", strings.TrimPrefix(err.Error(), "qualtrics: "))
		} else {
			in.BaseURL = u
		}
	} else if creating {
		bad("baseUrl", "is required, e.g. https://iad1.qualtrics.com/API/v3/")
	}
	if w.Icon != nil {
		if !icons[*w.Icon] {
			bad("icon", "must be one of briefcase, chart, clipboard, globe, heart, megaphone, people, star")
		} else {
			in.Icon = *w.Icon
		}
	}
	if w.RateLimit != nil {
		if w.RateLimit.Enabled != nil {
			in.RateLimitEnabled = *w.RateLimit.Enabled
		}
		if rpm := w.RateLimit.RequestsPerMinute; rpm != nil {
			if *rpm < 1 || *rpm > 3000 {
				bad("rateLimit.requestsPerMinute", "must be from 1 to 3000 (Qualtrics allows about 3000 per brand)")
			} else {
				in.RequestsPerMinute = *rpm
			}
		}
	}
	if t := w.RequestTimeoutSeconds; t != nil {
		if *t < 1 || *t > 600 {
			bad("requestTimeoutSeconds", "must be from 1 to 600")
		} else {
			in.RequestTimeoutSeconds = *t
		}
	}
	if w.Logging != nil && w.Logging.Enabled != nil {
		in.LoggingEnabled = *w.Logging.Enabled
	}
	if w.Events != nil && w.Events.Enabled != nil {
		in.EventsEnabled = *w.Events.Enabled
	}
	if in.Veto.MaxDeletePercent == 0 {
		in.Veto = microapps.DefaultVetoRule
	}
	if w.Veto != nil {
		if p := w.Veto.MaxDeletePercent; p != nil {
			if *p < 1 || *p > 100 {
				bad("veto.maxDeletePercent", "must be from 1 to 100 (100: never veto)")
			} else {
				in.Veto.MaxDeletePercent = *p
			}
		}
		if n := w.Veto.MinRows; n != nil {
			if *n < 0 || *n > 1_000_000_000 {
				bad("veto.minRows", "must be from 0 to 1000000000")
			} else {
				in.Veto.MinRows = *n
			}
		}
	}
	if w.Status != nil {
		switch st := microapps.IntegrationStatus(*w.Status); st {
		case microapps.IntegrationActive, microapps.IntegrationPaused:
			if st == microapps.IntegrationPaused || in.Status == microapps.IntegrationError {
				in.StatusMessage = ""
			}
			in.Status = st
		default:
			bad("status", `must be "active" or "paused" (an integration enters "error" by itself)`)
		}
	}
	if w.Schedule != nil {
		errs = append(errs, applySchedule(w.Schedule, in)...)
	}
	if w.DeepLinks != nil {
		for k, v := range w.DeepLinks {
			allowed, ok := deepLinkKeys[k]
			if !ok {
				bad("deepLinks."+k, "is not a known deep link (results, reviewDistributions, survey)")
				continue
			}
			if v == "" {
				delete(in.DeepLinks, k)
				continue
			}
			if msg := checkTemplate(v, allowed); msg != "" {
				bad("deepLinks."+k, msg)
				continue
			}
			if in.DeepLinks == nil {
				in.DeepLinks = map[string]string{}
			}
			in.DeepLinks[k] = v
		}
	}

	var cred *credentialChange
	switch {
	case w.Token != nil && w.OAuth != nil:
		bad("token", "give either token or oauth, not both")
	case w.Token != nil:
		if msg := checkSecret(*w.Token); msg != "" {
			bad("token", msg)
		} else {
			cred = &credentialChange{method: microapps.AuthToken, secret: *w.Token}
		}
	case w.OAuth != nil:
		o := w.OAuth
		c := credentialChange{method: microapps.AuthOAuth}
		if o.ClientID == nil || strings.TrimSpace(*o.ClientID) == "" {
			bad("oauth.clientId", "is required")
		} else if msg := checkSecret(*o.ClientID); msg != "" {
			bad("oauth.clientId", msg)
		} else {
			c.oauth.ClientID = strings.TrimSpace(*o.ClientID)
		}
		if o.ClientSecret == nil {
			bad("oauth.clientSecret", "is required")
		} else if msg := checkSecret(*o.ClientSecret); msg != "" {
			bad("oauth.clientSecret", msg)
		} else {
			c.oauth.ClientSecret = *o.ClientSecret
		}
		if o.Scope != nil {
			if len(*o.Scope) > 500 || strings.ContainsFunc(*o.Scope, func(r rune) bool { return !unicode.IsPrint(r) }) {
				bad("oauth.scope", "must be at most 500 printable characters")
			} else {
				c.oauth.Scope = strings.TrimSpace(*o.Scope)
			}
		}
		cred = &c
	case creating:
		bad("token", "is required (or give oauth instead)")
	}
	return cred, errs
}

func checkSecret(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if utf8.RuneCountInString(s) > 200 {
		return "must be at most 200 characters"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "must be printable characters without spaces"
		}
	}
	return ""
}

func checkTemplate(v string, allowed []string) string {
	if len(v) > 500 {
		return "must be at most 500 characters"
	}
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		return "must start with https:// (or http://)"
	}
	rest := v
	for _, p := range allowed {
		rest = strings.ReplaceAll(rest, p, "x")
	}
	if strings.ContainsAny(rest, "{}") {
		return "may only use the placeholders " + strings.Join(allowed, ", ")
	}
	if strings.ContainsFunc(rest, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' || r == '<' || r == '>'
	}) {
		return "must be a URL without spaces, quotes or angle brackets"
	}
	return ""
}

func applySchedule(w *ScheduleWrite, in *store.Integration) []microapps.FieldError {
	var errs []microapps.FieldError
	sched := in.Schedule.Effective()
	period := func(raw *string, field, example string, dst *time.Duration) {
		if raw == nil {
			return
		}
		d, err := time.ParseDuration(*raw)
		if err != nil {
			errs = append(errs, microapps.FieldError{Field: "schedule." + field, Message: `must be a duration such as ` + example})
			return
		}
		*dst = d
	}
	period(w.FullSyncEvery, "fullSyncEvery", `"1h" or "90m"`, &sched.FullSyncEvery)
	period(w.IncrementalSyncEvery, "incrementalSyncEvery", `"15m"`, &sched.IncrementalSyncEvery)
	period(w.VerifyEvery, "verifyEvery", `"24h"`, &sched.VerifyEvery)
	if len(w.FullSyncWindow) > 0 {
		if bytes.Equal(bytes.TrimSpace(w.FullSyncWindow), []byte("null")) {
			sched.FullSyncWindow = nil
		} else {
			var ww WindowWrite
			dec := json.NewDecoder(bytes.NewReader(w.FullSyncWindow))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ww); err != nil {
				errs = append(errs, microapps.FieldError{Field: "schedule.fullSyncWindow",
					Message: `must be {"start": "HH:MM", "end": "HH:MM", "timeZone": "Area/City"} or null`})
			} else {
				sched.FullSyncWindow = &microapps.SyncWindow{Start: ww.Start, End: ww.End, TimeZone: ww.TimeZone}
			}
		}
	}
	if errs = append(errs, sched.Validate()...); len(errs) == 0 {
		in.Schedule = sched
	}
	return errs
}
