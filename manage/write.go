package manage

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// IntegrationPatch is a change to an integration: each field that is set
// is changed, the others keep their value. Creating one needs Name, BaseURL
// and a Credential; every other field has a default. Each front end maps
// its own input (JSON, a form) onto it.
type IntegrationPatch struct {
	Name            *string
	FunctionalGroup *string // "" on creation: the name
	BaseURL         *string
	Icon            *string
	// Credential replaces the stored one (checked with /whoami first).
	Credential *Credential

	RateLimitEnabled      *bool
	RequestsPerMinute     *int
	RequestTimeoutSeconds *int
	LoggingEnabled        *bool
	EventsEnabled         *bool

	FullSyncEvery        *time.Duration
	IncrementalSyncEvery *time.Duration
	VerifyEvery          *time.Duration
	// SetFullSyncWindow changes the window to FullSyncWindow (nil clears it).
	SetFullSyncWindow bool
	FullSyncWindow    *microapps.SyncWindow

	VetoMaxDeletePercent *int
	VetoMinRows          *int
	// DeepLinks overrides deep-link templates by key; "" goes back to the
	// default.
	DeepLinks map[string]string
	// Status is active or paused: an integration enters error by itself.
	Status *microapps.IntegrationStatus

	// InputErrors are what the front end could not read (a period that is
	// no duration): reported with the service's own refusals, at once.
	InputErrors []microapps.FieldError
}

// Credential is an API token or an OAuth client. A nil field of an OAuth
// client is "not given" (its secret is required).
type Credential struct {
	Token *string
	OAuth *OAuthClient
}

// OAuthClient is the credential of the OAuth client-credentials flow.
type OAuthClient struct {
	ClientID, ClientSecret, Scope *string
}

// Changed names the settings p changes as the audit trail records them: the
// top-level fields of the admin API's body, the credential as "credential"
// (never the secret itself).
func (p *IntegrationPatch) Changed() []string {
	var out []string
	add := func(set bool, name string) {
		if set && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	add(p.Credential != nil, "credential")
	add(p.DeepLinks != nil, "deepLinks")
	add(p.EventsEnabled != nil, "events")
	add(p.FunctionalGroup != nil, "functionalGroup")
	add(p.Icon != nil, "icon")
	add(p.LoggingEnabled != nil, "logging")
	add(p.BaseURL != nil, "baseUrl")
	add(p.Name != nil, "name")
	add(p.RateLimitEnabled != nil || p.RequestsPerMinute != nil, "rateLimit")
	add(p.RequestTimeoutSeconds != nil, "requestTimeoutSeconds")
	add(p.FullSyncEvery != nil || p.IncrementalSyncEvery != nil || p.VerifyEvery != nil || p.SetFullSyncWindow, "schedule")
	add(p.Status != nil, "status")
	add(p.VetoMaxDeletePercent != nil || p.VetoMinRows != nil, "veto")
	slices.Sort(out)
	return out
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
func (s *Service) apply(w *IntegrationPatch, in *store.Integration, creating bool) (*credentialChange, []microapps.FieldError) {
	errs := slices.Clone(w.InputErrors)
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
	if w.RateLimitEnabled != nil {
		in.RateLimitEnabled = *w.RateLimitEnabled
	}
	if rpm := w.RequestsPerMinute; rpm != nil {
		if *rpm < 1 || *rpm > 3000 {
			bad("rateLimit.requestsPerMinute", "must be from 1 to 3000 (Qualtrics allows about 3000 per brand)")
		} else {
			in.RequestsPerMinute = *rpm
		}
	}
	if t := w.RequestTimeoutSeconds; t != nil {
		if *t < 1 || *t > 600 {
			bad("requestTimeoutSeconds", "must be from 1 to 600")
		} else {
			in.RequestTimeoutSeconds = *t
		}
	}
	if w.LoggingEnabled != nil {
		in.LoggingEnabled = *w.LoggingEnabled
	}
	if w.EventsEnabled != nil {
		in.EventsEnabled = *w.EventsEnabled
	}
	if in.Veto.MaxDeletePercent == 0 {
		in.Veto = microapps.DefaultVetoRule
	}
	if p := w.VetoMaxDeletePercent; p != nil {
		if *p < 1 || *p > 100 {
			bad("veto.maxDeletePercent", "must be from 1 to 100 (100: never veto)")
		} else {
			in.Veto.MaxDeletePercent = *p
		}
	}
	if n := w.VetoMinRows; n != nil {
		if *n < 0 || *n > 1_000_000_000 {
			bad("veto.minRows", "must be from 0 to 1000000000")
		} else {
			in.Veto.MinRows = *n
		}
	}
	if w.Status != nil {
		switch st := *w.Status; st {
		case microapps.IntegrationActive, microapps.IntegrationPaused:
			if st == microapps.IntegrationPaused || in.Status == microapps.IntegrationError {
				in.StatusMessage = ""
			}
			in.Status = st
		default:
			bad("status", `must be "active" or "paused" (an integration enters "error" by itself)`)
		}
	}
	errs = append(errs, applySchedule(w, in)...)
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
	var given Credential
	if w.Credential != nil {
		given = *w.Credential
	}
	switch {
	case given.Token != nil && given.OAuth != nil:
		bad("token", "give either token or oauth, not both")
	case given.Token != nil:
		if msg := checkSecret(*given.Token); msg != "" {
			bad("token", msg)
		} else {
			cred = &credentialChange{method: microapps.AuthToken, secret: *given.Token}
		}
	case given.OAuth != nil:
		o := given.OAuth
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

func applySchedule(w *IntegrationPatch, in *store.Integration) []microapps.FieldError {
	sched := in.Schedule.Effective()
	for _, p := range []struct {
		d   *time.Duration
		dst *time.Duration
	}{{w.FullSyncEvery, &sched.FullSyncEvery}, {w.IncrementalSyncEvery, &sched.IncrementalSyncEvery}, {w.VerifyEvery, &sched.VerifyEvery}} {
		if p.d != nil {
			*p.dst = *p.d
		}
	}
	if w.SetFullSyncWindow {
		sched.FullSyncWindow = w.FullSyncWindow
	}
	if w.FullSyncEvery == nil && w.IncrementalSyncEvery == nil && w.VerifyEvery == nil && !w.SetFullSyncWindow {
		return nil // not changed: a stored schedule is not judged again
	}
	errs := sched.Validate()
	if len(errs) == 0 {
		in.Schedule = sched
	}
	return errs
}
