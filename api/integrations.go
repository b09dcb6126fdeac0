package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// integrationWrite is the body of POST and PATCH. Pointers tell "absent" from
// "zero" so PATCH changes only what it names.
type integrationWrite struct {
	Name                  *string           `json:"name"`
	FunctionalGroup       *string           `json:"functionalGroup"`
	BaseURL               *string           `json:"baseUrl"`
	Token                 *string           `json:"token"`
	OAuth                 *oauthWrite       `json:"oauth"`
	Icon                  *string           `json:"icon"`
	RateLimit             *rateLimitWrite   `json:"rateLimit"`
	RequestTimeoutSeconds *int              `json:"requestTimeoutSeconds"`
	Logging               *enabledWrite     `json:"logging"`
	Schedule              *scheduleWrite    `json:"schedule"`
	Events                *enabledWrite     `json:"events"`
	DeepLinks             map[string]string `json:"deepLinks"`
	Status                *string           `json:"status"`
}

type oauthWrite struct {
	ClientID     *string `json:"clientId"`
	ClientSecret *string `json:"clientSecret"`
	Scope        *string `json:"scope"`
}

type rateLimitWrite struct {
	Enabled           *bool `json:"enabled"`
	RequestsPerMinute *int  `json:"requestsPerMinute"`
}

type enabledWrite struct {
	Enabled *bool `json:"enabled"`
}

type scheduleWrite struct {
	FullSyncEvery        *string         `json:"fullSyncEvery"`
	IncrementalSyncEvery *string         `json:"incrementalSyncEvery"`
	FullSyncWindow       json.RawMessage `json:"fullSyncWindow"` // null clears it
}

type windowWrite struct {
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

// credentialChange is what a request asks to change about the credential.
type credentialChange struct {
	method string // "token" or "oauth"
	secret string
	oauth  qualtrics.OAuthConfig
}

func (c credentialChange) auth() qualtrics.Auth {
	if c.method == "oauth" {
		o := c.oauth
		return qualtrics.Auth{OAuth: &o}
	}
	return qualtrics.Auth{Token: c.secret}
}

func (c credentialChange) hint() string {
	s := c.secret
	if c.method == "oauth" {
		s = c.oauth.ClientSecret
	}
	if utf8.RuneCountInString(s) <= 8 {
		return "…" // too short to show any of it safely
	}
	r := []rune(s)
	return "…" + string(r[len(r)-4:])
}

// apply validates w and applies it to in. creating says every required field
// must be present. It returns the credential change, if any; nothing is
// written anywhere.
func (h *handler) apply(w *integrationWrite, in *store.Integration, creating bool) (*credentialChange, []fieldError) {
	var errs []fieldError
	bad := func(field, msg string) { errs = append(errs, fieldError{Field: field, Message: msg}) }

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
		u, err := qualtrics.NormalizeBaseURL(*w.BaseURL, h.AllowedHosts)
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
	if w.Status != nil {
		switch *w.Status {
		case "active", "paused":
			if *w.Status == "active" && in.Status == "error" {
				in.StatusMessage = ""
			}
			if *w.Status == "paused" {
				in.StatusMessage = ""
			}
			in.Status = *w.Status
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
			cred = &credentialChange{method: "token", secret: *w.Token}
		}
	case w.OAuth != nil:
		o := w.OAuth
		c := credentialChange{method: "oauth"}
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

func applySchedule(s *scheduleWrite, in *store.Integration) []fieldError {
	var errs []fieldError
	full, incr := in.FullSyncEvery, in.IncrementalSyncEvery
	if s.FullSyncEvery != nil {
		d, err := time.ParseDuration(*s.FullSyncEvery)
		switch {
		case err != nil:
			errs = append(errs, fieldError{"schedule.fullSyncEvery", `must be a duration such as "1h" or "90m"`})
		case d < 5*time.Minute:
			errs = append(errs, fieldError{"schedule.fullSyncEvery", "must be at least 5m"})
		case d > 7*24*time.Hour:
			errs = append(errs, fieldError{"schedule.fullSyncEvery", "must be at most 168h (a week)"})
		default:
			full = d
		}
	}
	if s.IncrementalSyncEvery != nil {
		d, err := time.ParseDuration(*s.IncrementalSyncEvery)
		switch {
		case err != nil:
			errs = append(errs, fieldError{"schedule.incrementalSyncEvery", `must be a duration such as "15m"`})
		case d < time.Minute:
			errs = append(errs, fieldError{"schedule.incrementalSyncEvery", "must be at least 1m"})
		default:
			incr = d
		}
	}
	if len(errs) == 0 && incr >= full {
		errs = append(errs, fieldError{"schedule.incrementalSyncEvery", fmt.Sprintf("must be shorter than fullSyncEvery (%s)", formatDuration(full))})
	}
	if len(s.FullSyncWindow) > 0 {
		if bytes.Equal(bytes.TrimSpace(s.FullSyncWindow), []byte("null")) {
			in.FullSyncWindow = nil
		} else {
			var ww windowWrite
			dec := json.NewDecoder(bytes.NewReader(s.FullSyncWindow))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ww); err != nil {
				errs = append(errs, fieldError{"schedule.fullSyncWindow", `must be {"start": "HH:MM", "end": "HH:MM", "timeZone": "Area/City"} or null`})
			} else {
				errs = append(errs, checkWindow(ww)...)
				if len(errs) == 0 {
					in.FullSyncWindow = &store.SyncWindow{Start: ww.Start, End: ww.End, TimeZone: ww.TimeZone}
				}
			}
		}
	}
	if len(errs) == 0 {
		in.FullSyncEvery, in.IncrementalSyncEvery = full, incr
	}
	return errs
}

func checkWindow(w windowWrite) []fieldError {
	var errs []fieldError
	clock := func(s string) bool {
		t, err := time.Parse("15:04", s)
		return err == nil && t.Format("15:04") == s
	}
	if !clock(w.Start) {
		errs = append(errs, fieldError{"schedule.fullSyncWindow.start", `must be a time of day "HH:MM" (24 h)`})
	}
	if !clock(w.End) {
		errs = append(errs, fieldError{"schedule.fullSyncWindow.end", `must be a time of day "HH:MM" (24 h)`})
	}
	if w.Start == w.End && clock(w.Start) {
		errs = append(errs, fieldError{"schedule.fullSyncWindow.end", "must differ from start"})
	}
	if w.TimeZone == "" || strings.EqualFold(w.TimeZone, "local") {
		errs = append(errs, fieldError{"schedule.fullSyncWindow.timeZone", `must be an IANA time zone such as "Europe/Paris" or "UTC"`})
	} else if _, err := time.LoadLocation(w.TimeZone); err != nil {
		errs = append(errs, fieldError{"schedule.fullSyncWindow.timeZone", fmt.Sprintf("%q is not a known IANA time zone", w.TimeZone)})
	}
	return errs
}

// verified is what /whoami said about a credential.
type verified struct {
	who      qualtrics.WhoAmI
	baseURL  string // switched to the advised datacenter when Qualtrics said so
	warnings []string
}

// verify checks a credential with GET /whoami. It never includes the secret in
// what it returns or logs.
func (h *handler) verify(ctx context.Context, baseURL string, cred credentialChange, timeout time.Duration) (verified, error) {
	ctx, cancel := context.WithTimeout(ctx, h.VerifyTimeout)
	defer cancel()
	if timeout <= 0 || timeout > h.VerifyTimeout {
		timeout = h.VerifyTimeout
	}
	client, err := qualtrics.New(qualtrics.Config{BaseURL: baseURL, AllowedHosts: h.AllowedHosts, Auth: cred.auth(),
		Timeout: timeout, MaxAttempts: 3, BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		return verified{}, errValidation([]fieldError{{Field: "baseUrl", Message: strings.TrimPrefix(err.Error(), "qualtrics: ")}})
	}
	who, err := client.WhoAmI(ctx)
	if err != nil {
		var apiErr *qualtrics.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 && apiErr.StatusCode != http.StatusTooManyRequests {
			detail := fmt.Sprintf("Qualtrics answered %d", apiErr.StatusCode)
			if apiErr.ErrorCode != "" {
				detail += " " + apiErr.ErrorCode
			}
			if apiErr.ErrorMessage != "" {
				detail += ": " + strings.TrimSuffix(apiErr.ErrorMessage, ".")
			}
			detail += ". Check the " + map[bool]string{true: "OAuth client", false: "API token"}[cred.method == "oauth"] + " and the datacenter in baseUrl."
			return verified{}, errUnprocessable(detail)
		}
		if isOAuthRejected(err) {
			return verified{}, errUnprocessable("Qualtrics refused the OAuth client credentials: " + oauthReason(err) + ".")
		}
		h.Log.Warn("admin api: qualtrics unreachable during credential check", zap.String("baseUrl", baseURL), zap.Error(err))
		return verified{}, errBadGateway(fmt.Sprintf("GET /whoami on %s failed (%s). Try again later, or check baseUrl.", hostOf(baseURL), shortCause(err)))
	}
	v := verified{who: who, baseURL: baseURL}
	if who.AccountType != qualtrics.AccountTypeBrandAdmin {
		v.warnings = append(v.warnings, fmt.Sprintf("This credential belongs to a %q account, not a Brand Admin (UT_BRANDADMIN): only surveys that user owns or that are shared with it will sync.", who.AccountType))
	}
	if host := client.SuggestedHost(); host != "" {
		if switched, err := switchHost(baseURL, host, h.AllowedHosts); err == nil && switched != baseURL {
			v.baseURL = switched
			v.warnings = append(v.warnings, fmt.Sprintf("Qualtrics proxied the request and advised %s; baseUrl was switched to %s.", host, switched))
		}
	}
	return v, nil
}

func switchHost(baseURL, host string, allowed []string) (string, error) {
	i := strings.Index(baseURL, "://")
	if i < 0 {
		return "", errors.New("no scheme")
	}
	rest := baseURL[i+3:]
	j := strings.Index(rest, "/")
	if j < 0 {
		return "", errors.New("no path")
	}
	return qualtrics.NormalizeBaseURL(baseURL[:i+3]+host+rest[j:], allowed)
}

func hostOf(baseURL string) string {
	s := baseURL
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if j := strings.Index(s, "/"); j >= 0 {
		s = s[:j]
	}
	return s
}

func shortCause(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case qualtrics.IsRateLimited(err):
		return "rate limited by Qualtrics"
	}
	var apiErr *qualtrics.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d", apiErr.StatusCode)
	}
	return "network error"
}

func (h *handler) audit(r *http.Request, action string, details map[string]any) store.AuditEvent {
	return store.AuditEvent{Actor: actorFrom(r.Context()), Action: action, Details: details}
}

func (h *handler) seal(id string, cred credentialChange, in *store.Integration) error {
	secret := cred.secret
	if cred.method == "oauth" {
		secret = cred.oauth.ClientSecret
	}
	keyID, sealed, err := seal.SealSecret(h.Keyring, seal.Credential, id, []byte(secret))
	if err != nil {
		return err
	}
	in.AuthMethod = cred.method
	in.SecretSealed, in.SecretKeyID, in.SecretHint = sealed, keyID, cred.hint()
	in.OAuthClientID, in.OAuthScope = "", ""
	if cred.method == "oauth" {
		in.OAuthClientID, in.OAuthScope = cred.oauth.ClientID, cred.oauth.Scope
	}
	return nil
}

// storeCredential seals a verified credential into in. A new credential is the
// fix an integration in error asked for, so its scheduling resumes.
func (h *handler) storeCredential(in *store.Integration, cred credentialChange) error {
	if err := h.seal(in.ID, cred, in); err != nil {
		return err
	}
	if in.Status == "error" {
		in.Status, in.StatusMessage = "active", ""
	}
	return nil
}

func applyIdentity(in *store.Integration, v verified) {
	in.BaseURL = v.baseURL
	in.BrandID, in.Datacenter, in.AccountType, in.QualtricsUserID = v.who.BrandID, v.who.Datacenter, v.who.AccountType, v.who.UserID
}

func (h *handler) createIntegration(w http.ResponseWriter, r *http.Request) error {
	var body integrationWrite
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	if body.Status != nil && *body.Status != "active" && *body.Status != "paused" {
		return errValidation([]fieldError{{Field: "status", Message: `must be "active" or "paused"`}})
	}
	in := store.Integration{Icon: "clipboard", RequestsPerMinute: 1500, RequestTimeoutSeconds: 120,
		FullSyncEvery: time.Hour, IncrementalSyncEvery: 15 * time.Minute, Status: "active", DeepLinks: map[string]string{}}
	cred, errs := h.apply(&body, &in, true)
	if len(errs) > 0 {
		return errValidation(errs)
	}
	v, err := h.verify(r.Context(), in.BaseURL, *cred, time.Duration(in.RequestTimeoutSeconds)*time.Second)
	if err != nil {
		return err
	}
	applyIdentity(&in, v)
	in.ID = uuid.NewString()
	if err := h.seal(in.ID, *cred, &in); err != nil {
		return err
	}
	now := h.Now()
	in.NextFullSyncAt = &now
	created, err := h.Store.CreateIntegration(r.Context(), in, h.audit(r, "integration.create",
		map[string]any{"name": in.Name, "baseUrl": in.BaseURL, "authMethod": in.AuthMethod}))
	if err != nil {
		return err
	}
	h.queueSubscriptions(r.Context(), &body, created, true)
	res := toIntegrationResource(created, nil)
	if in.Status == "active" && h.Syncs != nil {
		// The first full sync starts at once rather than at the next scheduler tick.
		run, _, err := h.Syncs.Trigger(r.Context(), created.ID, "full", "create")
		if err != nil {
			h.Log.Warn("admin api: could not queue the first sync; the scheduler will", zap.String("integrationId", created.ID), zap.Error(err))
		} else {
			lr := toSyncRunResource(run)
			res.LastSync = &lr
		}
	}
	res.Warnings = v.warnings
	w.Header().Set("Location", "/api/v1/integrations/"+created.ID)
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (h *handler) resource(ctx context.Context, in store.Integration) (integrationResource, error) {
	runs, err := h.Store.ListSyncRuns(ctx, in.ID, 1)
	if err != nil {
		return integrationResource{}, err
	}
	var last *store.SyncRun
	if len(runs) > 0 {
		last = &runs[0]
	}
	return toIntegrationResource(in, last), nil
}

func (h *handler) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	list, err := h.Store.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	items := make([]integrationResource, 0, len(list))
	for _, in := range list {
		res, err := h.resource(r.Context(), in)
		if err != nil {
			return err
		}
		items = append(items, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (h *handler) loadIntegration(r *http.Request) (store.Integration, error) {
	in, err := h.Store.GetIntegration(r.Context(), chi.URLParam(r, "id"))
	if errors.Is(err, store.ErrNotFound) {
		return in, errNotFound("This integration")
	}
	return in, err
}

func (h *handler) getIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	res, err := h.resource(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *handler) patchIntegration(w http.ResponseWriter, r *http.Request) error {
	var body integrationWrite
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	current, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	// Validate and verify against a copy first: the Qualtrics check must not
	// run inside the row lock, and nothing may be written if it fails.
	draft := current
	draft.DeepLinks = cloneMap(current.DeepLinks)
	cred, errs := h.apply(&body, &draft, false)
	if len(errs) > 0 {
		return errValidation(errs)
	}
	var v *verified
	if cred != nil || draft.BaseURL != current.BaseURL {
		c := cred
		if c == nil {
			// A new base URL is checked with the stored credential.
			stored, err := h.storedCredential(current)
			if err != nil {
				return err
			}
			c = &stored
		}
		vv, err := h.verify(r.Context(), draft.BaseURL, *c, time.Duration(draft.RequestTimeoutSeconds)*time.Second)
		if err != nil {
			return err
		}
		v = &vv
	}
	changed := changedFields(&body)
	updated, err := h.Store.UpdateIntegration(r.Context(), current.ID, h.audit(r, "integration.update", map[string]any{"fields": changed}),
		func(in *store.Integration) error {
			cred2, errs := h.apply(&body, in, false)
			if len(errs) > 0 {
				return errValidation(errs)
			}
			if v != nil {
				applyIdentity(in, *v)
			}
			if cred2 != nil {
				return h.storeCredential(in, *cred2)
			}
			return nil
		})
	if err != nil {
		return err
	}
	h.queueSubscriptions(r.Context(), &body, updated, false)
	res, err := h.resource(r.Context(), updated)
	if err != nil {
		return err
	}
	if v != nil {
		res.Warnings = v.warnings
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func changedFields(b *integrationWrite) []string {
	var out []string
	raw, _ := json.Marshal(b)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	for k, v := range m {
		if string(v) != "null" {
			if k == "token" || k == "oauth" {
				k = "credential" // never the secret itself
			}
			out = append(out, k)
		}
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (h *handler) storedCredential(in store.Integration) (credentialChange, error) {
	plain, err := seal.OpenCredential(h.Keyring, in.ID, in.SecretKeyID, in.SecretSealed)
	if err != nil {
		return credentialChange{}, fmt.Errorf("open stored credential of %s: %w", in.ID, err)
	}
	c := credentialChange{method: in.AuthMethod, secret: string(plain)}
	if in.AuthMethod == "oauth" {
		c.oauth = qualtrics.OAuthConfig{ClientID: in.OAuthClientID, ClientSecret: string(plain), Scope: in.OAuthScope}
	}
	return c, nil
}

func (h *handler) putToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token *string `json:"token"`
	}
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	if body.Token == nil {
		return errValidation([]fieldError{{Field: "token", Message: "is required"}})
	}
	if msg := checkSecret(*body.Token); msg != "" {
		return errValidation([]fieldError{{Field: "token", Message: msg}})
	}
	current, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	cred := credentialChange{method: "token", secret: *body.Token}
	v, err := h.verify(r.Context(), current.BaseURL, cred, time.Duration(current.RequestTimeoutSeconds)*time.Second)
	if err != nil {
		return err
	}
	_, err = h.Store.UpdateIntegration(r.Context(), current.ID, h.audit(r, "integration.token", map[string]any{"tokenHint": cred.hint()}),
		func(in *store.Integration) error {
			applyIdentity(in, v)
			return h.storeCredential(in, cred)
		})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	if h.BeforeDelete != nil {
		if err := h.BeforeDelete(r.Context(), in); err != nil {
			h.Log.Warn("admin api: clean-up before deleting an integration failed", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	jobIDs, err := h.Store.DeleteIntegration(r.Context(), in.ID, h.audit(r, "integration.delete", map[string]any{"name": in.Name}))
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("This integration")
	}
	if err != nil {
		return err
	}
	if len(jobIDs) > 0 && h.Syncs != nil {
		if err := h.Syncs.CancelJobs(r.Context(), jobIDs); err != nil {
			// The jobs find the integration gone and end on their own.
			h.Log.Warn("admin api: could not cancel jobs of a deleted integration", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	if h.AfterDelete != nil {
		if err := h.AfterDelete(r.Context(), in.ID); err != nil {
			h.Log.Warn("admin api: could not queue the removal of a deleted integration's data", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) triggerSync(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Kind *string `json:"kind"`
	}
	if r.ContentLength != 0 {
		if err := decodeStrict(w, r, &body); err != nil {
			return err
		}
	}
	kind := "full"
	if body.Kind != nil {
		kind = *body.Kind
	}
	if kind != "full" && kind != "incremental" {
		return errValidation([]fieldError{{Field: "kind", Message: `must be "full" or "incremental"`}})
	}
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	if kind == "incremental" && in.FirstFullSyncAt == nil {
		return &apiError{status: http.StatusConflict, kind: "conflict", title: "Conflict",
			detail: "An incremental sync needs a successful full sync first; ask for a full sync."}
	}
	if h.Syncs == nil {
		return &apiError{status: http.StatusServiceUnavailable, kind: "unavailable", title: "Unavailable", detail: "Sync control is not available on this replica."}
	}
	run, created, err := h.Syncs.Trigger(r.Context(), in.ID, kind, "admin")
	if err != nil {
		return err
	}
	if created {
		if err := h.Store.RecordAudit(r.Context(), store.AuditEvent{Actor: actorFrom(r.Context()), Action: "sync.trigger",
			IntegrationID: in.ID, Details: map[string]any{"kind": kind, "syncId": run.ID}}); err != nil {
			h.Log.Warn("admin api: audit", zap.Error(err))
		}
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/integrations/%s/syncs/%d", in.ID, run.ID))
	writeJSON(w, http.StatusAccepted, toSyncRunResource(run))
	return nil
}

func (h *handler) listSyncs(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	limit, aerr := queryLimit(r, 50, 500)
	if aerr != nil {
		return aerr
	}
	runs, err := h.Store.ListSyncRuns(r.Context(), in.ID, limit)
	if err != nil {
		return err
	}
	items := make([]syncRunResource, 0, len(runs))
	for _, run := range runs {
		items = append(items, toSyncRunResource(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (h *handler) getSync(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(chi.URLParam(r, "syncId"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound("This sync run")
	}
	run, err := h.Store.GetSyncRun(r.Context(), in.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("This sync run")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSyncRunResource(run))
	return nil
}

type requestLogResource struct {
	At         time.Time `json:"at"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	DurationMS int       `json:"durationMs"`
	RequestID  string    `json:"requestId"`
	ErrorCode  string    `json:"errorCode"`
	SyncID     *int64    `json:"syncId,omitempty"`
}

func (h *handler) listLogs(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	limit, aerr := queryLimit(r, 500, 5000)
	if aerr != nil {
		return aerr
	}
	logs, err := h.Store.ListRequestLogs(r.Context(), in.ID, h.Now().Add(-24*time.Hour), limit)
	if err != nil {
		return err
	}
	items := make([]requestLogResource, 0, len(logs))
	for _, l := range logs {
		items = append(items, requestLogResource{At: l.At, Method: l.Method, Path: l.Path, Status: l.Status,
			DurationMS: l.DurationMS, RequestID: l.RequestID, ErrorCode: l.ErrorCode, SyncID: l.SyncRunID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func queryLimit(r *http.Request, def, max int) (int, *apiError) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errValidation([]fieldError{{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", max)}})
	}
	return n, nil
}
