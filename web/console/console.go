// Package console is the platform admin console (/console): integrations,
// their syncs, logs, deliveries and audit trail. Every change goes through
// the manage service, the same code the REST API calls; this package only
// turns forms into its calls and its answers into pages, on the pages' kit
// (package web), which also decides who is a platform admin: anyone else
// gets the 404 page on every console route.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/web"
)

const (
	consolePageSize = 50
	auditPageSize   = 50
	logsPageSize    = 25
	maxLogsShown    = 500 // the newest calls; the REST API serves up to 5000
)

// Options build the console.
type Options struct {
	Web    *web.Server     // the pages' kit: sign-in, layout, rendering
	Manage *manage.Service // every rule about integrations
	// Jobs says River's job UI is mounted under /console/jobs/ (a link in
	// the console's navigation).
	Jobs bool
	// Standby, when a read replica is configured, says where it stands.
	Standby func() store.StandbyStatus
}

// Console serves the console's pages.
type Console struct {
	*web.Server
	manage  *manage.Service
	jobs    bool
	standby func() store.StandbyStatus
}

// New returns the console; mount it with o.Web.AddRoutes(c.Routes).
func New(o Options) *Console {
	return &Console{Server: o.Web, manage: o.Manage, jobs: o.Jobs, standby: o.Standby}
}

// Routes adds the console's routes to mux (web.Server.AddRoutes).
func (s *Console) Routes(mux chi.Router) {
	mux.Get("/console", s.ConsolePage(s.consoleList))
	mux.Get("/console/", s.ConsolePage(s.consoleList))
	mux.Route("/console/integrations", func(r chi.Router) {
		r.Get("/new", s.ConsolePage(s.consoleNew))
		r.Post("/", s.ConsolePage(s.consoleCreate))
		r.Get("/{id}", s.ConsolePage(s.consoleDetail))
		r.Post("/{id}", s.ConsolePage(s.consoleUpdate))
		r.Get("/{id}/runs", s.ConsolePage(s.consoleRuns))
		r.Post("/{id}/syncs", s.ConsolePage(s.consoleSync))
		r.Post("/{id}/brand-admins", s.ConsolePage(s.consoleAddAdmin))
		r.Post("/{id}/brand-admins/remove", s.ConsolePage(s.consoleRemoveAdmin))
		r.Post("/{id}/webhook", s.ConsolePage(s.consoleWebhook))
		r.Post("/{id}/webhook/delete", s.ConsolePage(s.consoleWebhookDelete))
		r.Post("/{id}/webhook/test", s.ConsolePage(s.consoleWebhookTest))
		r.Post("/{id}/notification-defaults", s.ConsolePage(s.consoleNotificationDefaults))
		r.Get("/{id}/delete", s.ConsolePage(s.consoleDeleteConfirm))
		r.Post("/{id}/delete", s.ConsolePage(s.consoleDelete))
	})
	mux.Get("/console/audit", s.ConsolePage(s.consoleAudit))
	mux.Get("/console/health", s.ConsolePage(s.consoleHealth))
}

func (s *Console) consoleLayout(rc *web.Request, title string) web.Layout {
	l := s.Layout(rc, title)
	l.Nav = "console"
	l.ConsoleJobs = s.jobs
	return l
}

// ---- view models

// ConsoleRowVM is one integration in the console's list.
type ConsoleRowVM struct {
	ID, Name, Group, Icon string
	Status                web.Tag
	StatusMessage         string
	LastSync              *RunVM
	NextSync              web.TimeVM
	NextKind              string
	Recipients            int
	ActiveSurveys         int
}

// RunVM is one sync run.
type RunVM struct {
	ID                                                int64
	Kind, Trigger                                     string
	Status                                            web.Tag
	RawStatus                                         microapps.RunStatus
	Queued, Started, Finished                         web.TimeVM
	Duration                                          string
	APICalls                                          int
	Endpoints                                         []EndpointVM
	Surveys, Distributions, Recipients, Notifications int
	Warnings                                          []string
	Error                                             string
	Active                                            bool
	// Progress of a queued or running run: units (surveys, distributions)
	// done of those planned so far, and the phase.
	Phase                              string
	UnitsDone, UnitsTotal, UnitsFailed int
	// Vetoed: the run removed nothing it found gone (the veto rule);
	// Removals is what it would have removed. Latest: the integration's
	// newest run (the one whose removals an admin may let through).
	Vetoed   bool
	Removals store.Removals
	Latest   bool
}

// EndpointVM is the number of calls a run made to one Qualtrics endpoint.
type EndpointVM struct {
	Endpoint string
	Calls    int
}

// LogVM is one logged Qualtrics call.
type LogVM struct {
	At                           web.TimeVM
	Method, Path, RequestID, Err string
	Status, DurationMS           int
}

// DeliveryVM is one notification delivery.
type DeliveryVM struct {
	Kind, Email, Channel, LastError string
	Status                          web.Tag
	Attempts                        int
	Updated                         web.TimeVM
}

// AuditVM is one audit event.
type AuditVM struct {
	At                     web.TimeVM
	Actor, Action, Details string
	IntegrationID, Name    string
}

// FieldErrVM is one invalid field, for the error summary.
type FieldErrVM struct {
	ID, Label, Message string
}

// IntegrationFormVM is the create form or the settings form.
type IntegrationFormVM struct {
	Action     string
	Creating   bool
	Values     map[string]string
	Errors     map[string]string
	Summary    []FieldErrVM
	Verdict    string            // Qualtrics' verdict, above the summary
	Warnings   map[string]string // what Qualtrics said that did not stop the change, by field
	AuthMethod microapps.AuthMethod
	TokenHint  string
	Icons      []string
}

func (f IntegrationFormVM) V(name string) string { return f.Values[name] }
func (f IntegrationFormVM) On(name string) bool  { return f.Values[name] == "on" }
func (f IntegrationFormVM) E(name string) string { return f.Errors[name] }
func (f IntegrationFormVM) W(name string) string { return f.Warnings[name] }
func (f IntegrationFormVM) HasErrors() bool      { return len(f.Summary) > 0 || f.Verdict != "" }
func fieldID(name string) string                 { return "f-" + strings.ReplaceAll(name, ".", "-") }
func errID(name string) string                   { return fieldID(name) + "-error" }

// ConsoleDetailVM is the page of one integration.
type ConsoleDetailVM struct {
	ID, Name, Group, Icon    string
	Status                   web.Tag
	StatusMessage            string
	BaseURL                  string
	AuthMethod               microapps.AuthMethod
	BrandID, Datacenter      string
	AccountType, UserID      string
	TokenHint, OAuthClientID string
	Created, Updated         web.TimeVM
	FirstFullSync            bool
	Notices                  []string
	Warnings                 []string
	Runs                     []RunVM
	Refreshing               bool
	Form                     IntegrationFormVM
	Admins                   []string
	AdminEmail, AdminErr     string
	Webhook                  manage.WebhookView
	WebhookForm              map[string]string
	WebhookErrs              map[string]string
	Defaults                 map[string]string // notification defaults: language, timeZone
	DefaultsErrs             map[string]string
	HasDefaults              bool
	LoggingEnabled           bool
	Logs                     []LogVM
	LogsTotal                int
	LogsPager                web.Pager
	Deliveries               []DeliveryVM
	Audit                    []AuditVM
	AuditMoreURL             string
	SyncErr                  string
}

// ---- list

// ConsoleListVM is the console's list: one page of the integrations that
// match the search and the status filter.
type ConsoleListVM struct {
	Rows     []ConsoleRowVM
	Pager    web.Pager
	Search   string
	Statuses []web.FilterVM
	// Filtered says a search or filter is on, so an empty page says "no
	// match" rather than "no integration yet".
	Filtered bool
}

func (s *Console) consoleList(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	ctx := r.Context()
	vm := ConsoleListVM{Search: strings.TrimSpace(r.URL.Query().Get("q"))}
	if len(vm.Search) > 200 {
		vm.Search = vm.Search[:200]
	}
	status := microapps.IntegrationStatus(r.URL.Query().Get("status"))
	if !status.Valid() {
		status = ""
	}
	vm.Filtered = vm.Search != "" || status != ""
	vm.Statuses = append(vm.Statuses, web.FilterVM{Key: "", Label: rc.Lang.T("console.filter.all"), Selected: status == ""})
	for _, k := range microapps.IntegrationStatuses {
		vm.Statuses = append(vm.Statuses, web.FilterVM{Key: string(k), Label: rc.Lang.T("console.status." + string(k)), Selected: k == status})
	}
	q := store.IntegrationQuery{Status: status, Search: vm.Search, Limit: consolePageSize, ByName: true, WithCounts: true,
		Offset: (web.PageParam(r) - 1) * consolePageSize}
	page, err := s.manage.Page(ctx, q)
	if err != nil {
		return err
	}
	if len(page.Items) == 0 && q.Offset > 0 {
		// Past the last page (the fleet shrank, a hand-made link): the
		// pager below links back to the last one.
		q.Offset, q.Limit = 0, 1
		if page, err = s.manage.Page(ctx, q); err != nil {
			return err
		}
		page.Items = nil
	}
	vm.Pager = web.NewPager(r, page.Total, consolePageSize)
	for _, it := range page.Items {
		in := it.Integration
		row := ConsoleRowVM{ID: in.ID, Name: in.Name, Group: in.FunctionalGroup, Icon: in.Icon,
			Status: integrationTag(in.Status, rc.Lang), StatusMessage: in.StatusMessage,
			Recipients: it.Counts.Recipients, ActiveSurveys: it.Counts.ActiveSurveys}
		if it.LastRun != nil {
			run := s.runVM(*it.LastRun, rc)
			row.LastSync = &run
		}
		if in.Status == microapps.IntegrationActive {
			next, kind := microapps.NextSync(in.NextFullSyncAt, in.NextIncrementalSyncAt, in.FirstFullSyncAt != nil)
			row.NextSync, row.NextKind = s.Time(next, rc), rc.Lang.T("console.kind."+string(kind))
		}
		vm.Rows = append(vm.Rows, row)
	}
	s.Render(w, r, consoleListPage(s.consoleLayout(rc, rc.Lang.T("console.title")), vm, doneNotices(r, rc)))
	return nil
}

func integrationTag(status microapps.IntegrationStatus, l web.Lang) web.Tag {
	tone := map[microapps.IntegrationStatus]string{microapps.IntegrationActive: "success", microapps.IntegrationPaused: "neutral",
		microapps.IntegrationError: "danger"}[status]
	if tone == "" {
		tone = "neutral"
	}
	return web.Tag{Key: string(status), Label: l.T("console.status." + string(status)), Tone: tone}
}

func runTag(status microapps.RunStatus, l web.Lang) web.Tag {
	tone := map[microapps.RunStatus]string{microapps.RunQueued: "neutral", microapps.RunRunning: "progress",
		microapps.RunSucceeded: "success", microapps.RunFailed: "danger"}[status]
	if tone == "" {
		tone = "neutral"
	}
	return web.Tag{Key: string(status), Label: l.T("console.run." + string(status)), Tone: tone}
}

func (s *Console) runVM(run store.SyncRun, rc *web.Request) RunVM {
	vm := RunVM{ID: run.ID, Kind: rc.Lang.T("console.kind." + string(run.Kind)), Trigger: rc.Lang.T("console.trigger." + string(run.Trigger)),
		Status: runTag(run.Status, rc.Lang), RawStatus: run.Status, Queued: web.TimeAt(run.QueuedAt, rc),
		Started: s.Time(run.StartedAt, rc), Finished: s.Time(run.FinishedAt, rc), APICalls: run.APICalls,
		Surveys: run.Surveys, Distributions: run.Distributions, Recipients: run.Recipients, Notifications: run.Notifications,
		Warnings: run.Warnings, Error: run.Error, Active: run.Status.Active(),
		UnitsDone: run.Progress.UnitsDone, UnitsTotal: run.Progress.UnitsTotal, UnitsFailed: run.Progress.UnitsFailed,
		Vetoed: run.Vetoed, Removals: run.Removals}
	if run.Vetoed {
		vm.Status = web.Tag{Key: "vetoed", Label: rc.Lang.T("console.run.vetoedtag"), Tone: "danger"}
	}
	if run.Progress.Phase != "" {
		vm.Phase = rc.Lang.T("console.phase." + run.Progress.Phase)
	}
	if run.StartedAt != nil {
		end := rc.Now
		if run.FinishedAt != nil {
			end = *run.FinishedAt
		}
		vm.Duration = roundDuration(end.Sub(*run.StartedAt))
	}
	for ep, n := range run.APICallsByEndpoint {
		vm.Endpoints = append(vm.Endpoints, EndpointVM{Endpoint: ep, Calls: n})
	}
	slices.SortFunc(vm.Endpoints, func(a, b EndpointVM) int {
		if a.Calls != b.Calls {
			return b.Calls - a.Calls
		}
		return strings.Compare(a.Endpoint, b.Endpoint)
	})
	return vm
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// doneNotices words the outcome of the last change (?done=…&warn=…), from
// fixed keys only.
func doneNotices(r *http.Request, rc *web.Request) []string {
	var out []string
	q := r.URL.Query()
	if d := q.Get("done"); d != "" && consoleDone[d] {
		out = append(out, rc.Lang.T("console.done."+d))
	}
	return out
}

var consoleDone = map[string]bool{"created": true, "saved": true, "sync-queued": true, "sync-running": true,
	"admin-added": true, "admin-removed": true, "defaults-saved": true, "webhook-saved": true, "webhook-deleted": true, "webhook-tested": true, "deleted": true}

// warnings words what Qualtrics said on the last change (?warn=…, fixed
// kinds only), each next to the field it concerns: the credential's or the
// base URL's.
func warnings(r *http.Request, rc *web.Request, authMethod microapps.AuthMethod) map[string]string {
	out := map[string]string{}
	for _, k := range strings.Split(r.URL.Query().Get("warn"), ",") {
		switch k {
		case manage.WarnNotBrandAdmin:
			field := "token"
			if authMethod == microapps.AuthOAuth {
				field = "oauth.clientSecret"
			}
			out[field] = rc.Lang.T("console.warn." + k)
		case manage.WarnHostSwitched:
			out["baseUrl"] = rc.Lang.T("console.warn." + k)
		}
	}
	return out
}

func warnParam(ws []manage.Warning) string {
	var kinds []string
	for _, w := range ws {
		kinds = append(kinds, w.Kind)
	}
	return strings.Join(kinds, ",")
}

// ---- create and settings forms

func (s *Console) consoleNew(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	sched, veto := microapps.DefaultSchedule, microapps.DefaultVetoRule
	f := IntegrationFormVM{Action: "/console/integrations", Creating: true, AuthMethod: microapps.AuthToken, Icons: manage.Icons(),
		Values: map[string]string{"icon": "clipboard", "rateLimit.requestsPerMinute": "1500", "requestTimeoutSeconds": "120",
			"schedule.fullSyncEvery":        microapps.FormatDuration(sched.FullSyncEvery),
			"schedule.incrementalSyncEvery": microapps.FormatDuration(sched.IncrementalSyncEvery),
			"schedule.verifyEvery":          microapps.FormatDuration(sched.VerifyEvery), "authMethod": string(microapps.AuthToken),
			"vetoMaxDeletePercent": strconv.Itoa(veto.MaxDeletePercent), "vetoMinRows": strconv.Itoa(veto.MinRows)}}
	s.Render(w, r, consoleNewPage(s.consoleLayout(rc, rc.Lang.T("console.new.title")), f))
	return nil
}

// formFields are the inputs of the integration form that are echoed back
// after an error. The secrets (token, oauth.clientSecret) are not among them.
var formFields = []string{"name", "functionalGroup", "baseUrl", "authMethod", "oauth.clientId", "oauth.scope", "icon",
	"rateLimit.enabled", "rateLimit.requestsPerMinute", "requestTimeoutSeconds", "logging.enabled",
	"schedule.fullSyncEvery", "schedule.incrementalSyncEvery", "schedule.verifyEvery", "schedule.fullSyncWindow.start",
	"schedule.fullSyncWindow.end", "schedule.fullSyncWindow.timeZone", "events.enabled", "paused", "vetoMaxDeletePercent", "vetoMinRows"}

func typedValues(r *http.Request) map[string]string {
	v := map[string]string{}
	for _, k := range formFields {
		v[k] = r.PostForm.Get(k)
	}
	if v["authMethod"] != "oauth" {
		v["authMethod"] = "token"
	}
	return v
}

// writeFromForm turns the integration form into the service's change. On
// the settings form (current != nil) the credential is written only when a
// new secret was typed. Inputs that are not numbers are refused here, before
// anything is checked with Qualtrics.
func writeFromForm(r *http.Request, current *store.Integration, l web.Lang) (manage.IntegrationPatch, map[string]string) {
	f := r.PostForm
	str := func(k string) *string { v := f.Get(k); return &v }
	on := func(k string) *bool { b := f.Get(k) == "on"; return &b }
	errs := map[string]string{}
	num := func(k string) *int {
		n, err := strconv.Atoi(strings.TrimSpace(f.Get(k)))
		if err != nil {
			errs[k] = l.T("console.err.number")
			return nil
		}
		return &n
	}
	p := manage.IntegrationPatch{Name: str("name"), FunctionalGroup: str("functionalGroup"), BaseURL: str("baseUrl"),
		Icon: str("icon"), RateLimitEnabled: on("rateLimit.enabled"), RequestsPerMinute: num("rateLimit.requestsPerMinute"),
		RequestTimeoutSeconds: num("requestTimeoutSeconds"), LoggingEnabled: on("logging.enabled"), EventsEnabled: on("events.enabled")}
	// An empty veto field keeps the current (or default) value.
	if strings.TrimSpace(f.Get("vetoMaxDeletePercent")) != "" {
		p.VetoMaxDeletePercent = num("vetoMaxDeletePercent")
	}
	if strings.TrimSpace(f.Get("vetoMinRows")) != "" {
		p.VetoMinRows = num("vetoMinRows")
	}
	if *p.Icon == "" {
		p.Icon = nil
	}
	for _, e := range []struct {
		field string
		dst   **time.Duration
	}{{"fullSyncEvery", &p.FullSyncEvery}, {"incrementalSyncEvery", &p.IncrementalSyncEvery}, {"verifyEvery", &p.VerifyEvery}} {
		raw := f.Get("schedule." + e.field)
		if e.field == "verifyEvery" && strings.TrimSpace(raw) == "" {
			continue // keep the current (or default) interval
		}
		if d, ferr := microapps.ParseEvery(e.field, raw); ferr != nil {
			p.InputErrors = append(p.InputErrors, *ferr)
		} else {
			*e.dst = &d
		}
	}
	start, end, tz := f.Get("schedule.fullSyncWindow.start"), f.Get("schedule.fullSyncWindow.end"), strings.TrimSpace(f.Get("schedule.fullSyncWindow.timeZone"))
	switch {
	case start == "" && end == "" && tz == "":
		p.SetFullSyncWindow = current == nil || current.FullSyncWindow != nil
	default:
		p.SetFullSyncWindow, p.FullSyncWindow = true, &microapps.SyncWindow{Start: start, End: end, TimeZone: tz}
	}
	method, token := microapps.AuthMethod(f.Get("authMethod")), f.Get("token")
	clientID, secret := strings.TrimSpace(f.Get("oauth.clientId")), f.Get("oauth.clientSecret")
	if current != nil {
		method = current.AuthMethod
	}
	switch {
	case method == microapps.AuthOAuth && (current == nil || secret != "" || clientID != current.OAuthClientID || f.Get("oauth.scope") != current.OAuthScope):
		o := &manage.OAuthClient{ClientID: &clientID, ClientSecret: &secret, Scope: str("oauth.scope")}
		if secret == "" {
			o.ClientSecret = nil
		}
		p.Credential = &manage.Credential{OAuth: o}
	case method != microapps.AuthOAuth && (current == nil || token != ""):
		p.Credential = &manage.Credential{Token: &token}
	}
	if current != nil {
		paused := f.Get("paused") == "on"
		switch {
		case paused && current.Status != microapps.IntegrationPaused:
			p.Status = ptr(microapps.IntegrationPaused)
		case !paused && current.Status == microapps.IntegrationPaused:
			p.Status = ptr(microapps.IntegrationActive)
		}
	}
	return p, errs
}

func ptr[T any](v T) *T { return &v }

// formLabels names each field for the error summary.
func formLabel(field string, l web.Lang) string {
	key := "console.f." + field
	if t := l.T(key); t != key {
		return t
	}
	return field
}

// applyServiceError puts the service's refusal on the form: each invalid
// field next to its input, Qualtrics' verdict next to the field it concerns.
// It returns the HTTP status of the page.
// vetoFormFields are the form inputs of the service's veto fields.
var vetoFormFields = map[string]string{"veto.maxDeletePercent": "vetoMaxDeletePercent", "veto.minRows": "vetoMinRows"}

func applyServiceError(f *IntegrationFormVM, err error, l web.Lang) (int, bool) {
	var me *manage.Error
	if !errors.As(err, &me) {
		return 0, false
	}
	f.Errors = map[string]string{}
	put := func(field, msg string) {
		name := field
		if form, ok := vetoFormFields[field]; ok {
			name = form
		}
		if strings.HasPrefix(field, "schedule.fullSyncWindow") && !slices.Contains(formFields, field) {
			name = "schedule.fullSyncWindow.start"
		}
		if !slices.Contains(formFields, name) && name != "token" && name != "oauth.clientSecret" {
			f.Summary = append(f.Summary, FieldErrVM{Label: formLabel(field, l), Message: msg})
			return
		}
		if f.Errors[name] == "" {
			f.Errors[name] = msg
		}
		f.Summary = append(f.Summary, FieldErrVM{ID: fieldID(name), Label: formLabel(name, l), Message: msg})
	}
	status := http.StatusBadRequest
	switch me.Kind {
	case manage.Invalid:
		for _, fe := range me.Fields {
			put(fe.Field, fe.Message)
		}
	case manage.Rejected:
		status = http.StatusUnprocessableEntity
		f.Verdict = l.T("console.verdict.rejected")
		put(me.Field, me.Detail)
	case manage.Unreachable:
		status = http.StatusBadGateway
		f.Verdict = l.T("console.verdict.unreachable")
		put(me.Field, me.Detail)
	case manage.NotFound:
		return http.StatusNotFound, true
	default:
		status = http.StatusConflict
		f.Summary = append(f.Summary, FieldErrVM{Message: me.Detail})
	}
	return status, true
}

func (s *Console) consoleCreate(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	f := IntegrationFormVM{Action: "/console/integrations", Creating: true, Icons: manage.Icons(), Values: typedValues(r)}
	f.AuthMethod = microapps.AuthMethod(f.Values["authMethod"])
	write, parseErrs := writeFromForm(r, nil, rc.Lang)
	var err error
	var created manage.Created
	if len(parseErrs) > 0 {
		err = numberErrors(parseErrs)
	} else {
		created, err = s.manage.Create(r.Context(), rc.Email, write)
	}
	if err != nil {
		status, ok := applyServiceError(&f, err, rc.Lang)
		if !ok {
			return err
		}
		s.RenderStatus(w, r, status, consoleNewPage(s.consoleLayout(rc, rc.Lang.T("console.new.title")), f))
		return nil
	}
	target := "/console/integrations/" + created.Integration.ID + "?done=created"
	if wp := warnParam(created.Warnings); wp != "" {
		target += "&warn=" + url.QueryEscape(wp)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// numberErrors is the form's own refusal of inputs that are not numbers,
// shaped like the service's so one path shows both.
func numberErrors(errs map[string]string) error {
	me := &manage.Error{Kind: manage.Invalid}
	for _, k := range formFields {
		if msg, ok := errs[k]; ok {
			me.Fields = append(me.Fields, microapps.FieldError{Field: k, Message: msg})
		}
	}
	return me
}

// ---- one integration

func (s *Console) consoleDetail(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	vm, err := s.detailVM(r, rc, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.Render(w, r, consoleDetailPage(s.consoleLayout(rc, vm.Name), vm))
	return nil
}

// settingsValues fills the settings form from the stored integration.
func settingsValues(in store.Integration) map[string]string {
	b := func(v bool) string {
		if v {
			return "on"
		}
		return ""
	}
	veto := in.Veto
	if veto.MaxDeletePercent == 0 {
		veto = microapps.DefaultVetoRule
	}
	v := map[string]string{"name": in.Name, "functionalGroup": in.FunctionalGroup, "baseUrl": in.BaseURL,
		"authMethod": string(in.AuthMethod), "oauth.clientId": in.OAuthClientID, "oauth.scope": in.OAuthScope, "icon": in.Icon,
		"rateLimit.enabled": b(in.RateLimitEnabled), "rateLimit.requestsPerMinute": strconv.Itoa(in.RequestsPerMinute),
		"requestTimeoutSeconds": strconv.Itoa(in.RequestTimeoutSeconds), "logging.enabled": b(in.LoggingEnabled),
		"schedule.fullSyncEvery": microapps.FormatDuration(in.FullSyncEvery), "schedule.incrementalSyncEvery": microapps.FormatDuration(in.IncrementalSyncEvery),
		"schedule.verifyEvery": microapps.FormatDuration(in.Schedule.Effective().VerifyEvery),
		"events.enabled":       b(in.EventsEnabled), "paused": b(in.Status == microapps.IntegrationPaused),
		"vetoMaxDeletePercent": strconv.Itoa(veto.MaxDeletePercent), "vetoMinRows": strconv.Itoa(veto.MinRows)}
	if in.FullSyncWindow != nil {
		v["schedule.fullSyncWindow.start"], v["schedule.fullSyncWindow.end"], v["schedule.fullSyncWindow.timeZone"] =
			in.FullSyncWindow.Start, in.FullSyncWindow.End, in.FullSyncWindow.TimeZone
	}
	return v
}

func (s *Console) detailVM(r *http.Request, rc *web.Request, id string) (ConsoleDetailVM, error) {
	ctx := r.Context()
	before := int64(0)
	if n, err := strconv.ParseInt(r.URL.Query().Get("auditBefore"), 10, 64); err == nil && n > 0 {
		before = n
	}
	o, err := s.manage.Overview(ctx, id, store.OverviewQuery{Runs: 10, Logs: maxLogsShown, Deliveries: 50,
		Audit: auditShown + 1, AuditBefore: before})
	if err != nil {
		return ConsoleDetailVM{}, notFoundErr(err)
	}
	in := o.Integration
	vm := ConsoleDetailVM{ID: in.ID, Name: in.Name, Group: in.FunctionalGroup, Icon: in.Icon,
		Status: integrationTag(in.Status, rc.Lang), StatusMessage: in.StatusMessage, BaseURL: in.BaseURL,
		AuthMethod: in.AuthMethod, BrandID: in.BrandID, Datacenter: in.Datacenter, AccountType: in.AccountType,
		UserID: in.QualtricsUserID, TokenHint: in.SecretHint, OAuthClientID: in.OAuthClientID,
		Created: web.TimeAt(in.CreatedAt, rc), Updated: web.TimeAt(in.UpdatedAt, rc), FirstFullSync: in.FirstFullSyncAt != nil,
		LoggingEnabled: in.LoggingEnabled, Notices: doneNotices(r, rc),
		Form: IntegrationFormVM{Action: "/console/integrations/" + in.ID, Values: settingsValues(in), Errors: map[string]string{},
			AuthMethod: in.AuthMethod, TokenHint: in.SecretHint, Icons: manage.Icons(), Warnings: warnings(r, rc, in.AuthMethod)},
		WebhookForm: map[string]string{"format": string(microapps.WebhookJSON)}, WebhookErrs: map[string]string{},
		Admins: o.BrandAdmins, Webhook: o.WebhookView, HasDefaults: true, DefaultsErrs: map[string]string{},
		Defaults: map[string]string{"language": o.Defaults.Language, "timeZone": o.Defaults.TimeZone}}
	vm.Runs, vm.Refreshing = s.runVMs(o.Runs, rc)
	if vm.Webhook.Set {
		vm.WebhookForm["format"] = string(vm.Webhook.Format)
	}
	if in.LoggingEnabled {
		logs := o.Logs
		vm.LogsTotal = len(logs)
		page := 1
		if n, err := strconv.Atoi(r.URL.Query().Get("logs")); err == nil && n > 1 {
			page = min(n, (len(logs)+logsPageSize-1)/logsPageSize)
		}
		from := min((page-1)*logsPageSize, len(logs))
		logs = logs[from:min(from+logsPageSize, len(logs))]
		link := func(n int) string {
			return fmt.Sprintf("/console/integrations/%s?logs=%d#logs", in.ID, n)
		}
		vm.LogsPager = web.Pager{Page: page, Pages: max(1, (vm.LogsTotal+logsPageSize-1)/logsPageSize), Total: vm.LogsTotal}
		if page > 1 {
			vm.LogsPager.PrevURL = link(page - 1)
		}
		if page < vm.LogsPager.Pages {
			vm.LogsPager.NextURL = link(page + 1)
		}
		for _, l := range logs {
			vm.Logs = append(vm.Logs, LogVM{At: web.TimeAt(l.At, rc), Method: l.Method, Path: l.Path, RequestID: l.RequestID,
				Err: l.ErrorCode, Status: l.Status, DurationMS: l.DurationMS})
		}
	}
	for _, d := range o.Deliveries {
		vm.Deliveries = append(vm.Deliveries, DeliveryVM{Kind: rc.Lang.T("kind." + string(d.Kind)), Email: d.Email, Channel: string(d.Channel),
			LastError: strings.TrimSpace(d.LastError), Status: deliveryTag(d.Status, rc.Lang), Attempts: d.Attempts, Updated: web.TimeAt(d.UpdatedAt, rc)})
	}
	evs := o.Audit
	if len(evs) > auditShown {
		evs = evs[:auditShown]
		vm.AuditMoreURL = fmt.Sprintf("/console/integrations/%s?auditBefore=%d#audit", in.ID, evs[len(evs)-1].ID)
	}
	vm.Audit = s.auditVMs(evs, rc)
	return vm, nil
}

// auditShown is how many audit events an integration's page shows at once.
const auditShown = 20

func (s *Console) runVMs(runs []store.SyncRun, rc *web.Request) ([]RunVM, bool) {
	var out []RunVM
	active := false
	for i, run := range runs {
		vm := s.runVM(run, rc)
		vm.Latest = i == 0
		active = active || vm.Active
		out = append(out, vm)
	}
	return out, active
}

func deliveryTag(status microapps.DeliveryStatus, l web.Lang) web.Tag {
	tone := map[microapps.DeliveryStatus]string{microapps.DeliveryPending: "progress", microapps.DeliverySent: "success",
		microapps.DeliveryFailed: "danger", microapps.DeliverySkipped: "neutral"}[status]
	if tone == "" {
		tone = "neutral"
	}
	return web.Tag{Key: string(status), Label: l.T("console.delivery." + string(status)), Tone: tone}
}

func (s *Console) auditVMs(evs []store.AuditEvent, rc *web.Request) []AuditVM {
	out := make([]AuditVM, 0, len(evs))
	for _, ev := range evs {
		details := ""
		if len(ev.Details) > 0 {
			b, _ := json.Marshal(ev.Details)
			details = string(b)
		}
		out = append(out, AuditVM{At: web.TimeAt(ev.At, rc), Actor: ev.Actor, Action: ev.Action, Details: details,
			IntegrationID: ev.IntegrationID, Name: ev.IntegrationName})
	}
	return out
}

// refusal returns the service's refusal to show on the page, or the error
// to return instead: the 404 page for a missing integration, a 500 for
// anything that is not a refusal.
func refusal(err error) (*manage.Error, error) {
	var me *manage.Error
	if !errors.As(err, &me) {
		return nil, err
	}
	if me.Kind == manage.NotFound {
		return nil, web.ErrNotFound
	}
	return me, nil
}

func notFoundErr(err error) error {
	var me *manage.Error
	if errors.As(err, &me) && me.Kind == manage.NotFound {
		return web.ErrNotFound
	}
	return err
}

// consoleRuns is the runs section alone: the page's script swaps it in while
// a run is queued or running, so progress shows without a full reload.
func (s *Console) consoleRuns(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	list, err := s.manage.SyncRuns(r.Context(), id, 10)
	if err != nil {
		return notFoundErr(err)
	}
	runs, refreshing := s.runVMs(list, rc)
	s.Render(w, r, runsSection(rc.Lang, id, runs, refreshing))
	return nil
}

// rerender shows the integration page again with what went wrong in place.
func (s *Console) rerender(w http.ResponseWriter, r *http.Request, rc *web.Request, status int, edit func(*ConsoleDetailVM)) error {
	vm, err := s.detailVM(r, rc, r.PathValue("id"))
	if err != nil {
		return err
	}
	edit(&vm)
	s.RenderStatus(w, r, status, consoleDetailPage(s.consoleLayout(rc, vm.Name), vm))
	return nil
}

func (s *Console) consoleUpdate(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	current, err := s.manage.Get(r.Context(), id)
	if err != nil {
		return notFoundErr(err)
	}
	write, parseErrs := writeFromForm(r, &current, rc.Lang)
	var warnings []manage.Warning
	if len(parseErrs) > 0 {
		err = numberErrors(parseErrs)
	} else {
		_, warnings, err = s.manage.Update(r.Context(), rc.Email, id, write)
	}
	if err != nil {
		f := IntegrationFormVM{Action: "/console/integrations/" + id, Values: typedValues(r), AuthMethod: current.AuthMethod,
			TokenHint: current.SecretHint, Icons: manage.Icons()}
		status, ok := applyServiceError(&f, err, rc.Lang)
		if !ok {
			return err
		}
		if status == http.StatusNotFound {
			return web.ErrNotFound
		}
		return s.rerender(w, r, rc, status, func(vm *ConsoleDetailVM) { vm.Form = f })
	}
	target := "/console/integrations/" + id + "?done=saved"
	if wp := warnParam(warnings); wp != "" {
		target += "&warn=" + url.QueryEscape(wp)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

func (s *Console) consoleSync(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	_, created, err := s.manage.TriggerSyncOverride(r.Context(), rc.Email, id, microapps.SyncKind(r.PostForm.Get("kind")), r.PostForm.Get("overrideVeto") == "on")
	if err != nil {
		me, err := refusal(err)
		if err != nil {
			return err
		}
		msg := me.Detail
		if me.Kind == manage.Invalid && len(me.Fields) > 0 {
			msg = formLabel(me.Fields[0].Field, rc.Lang) + " " + me.Fields[0].Message
		} else if me.Kind == manage.Conflict {
			msg = rc.Lang.T("console.sync.needfull")
		}
		return s.rerender(w, r, rc, http.StatusConflict, func(vm *ConsoleDetailVM) { vm.SyncErr = msg })
	}
	done := "sync-queued"
	if !created {
		done = "sync-running"
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done="+done+"#runs", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleAddAdmin(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	return s.adminChange(w, r, rc, s.manage.PutBrandAdmin, "admin-added")
}

func (s *Console) consoleRemoveAdmin(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	return s.adminChange(w, r, rc, s.manage.DeleteBrandAdmin, "admin-removed")
}

func (s *Console) adminChange(w http.ResponseWriter, r *http.Request, rc *web.Request,
	op func(ctx context.Context, actor, id, email string) (string, error), done string) error {
	id := r.PathValue("id")
	typed := r.PostForm.Get("email")
	if _, err := op(r.Context(), rc.Email, id, typed); err != nil {
		if _, err := refusal(err); err != nil {
			return err
		}
		return s.rerender(w, r, rc, http.StatusBadRequest, func(vm *ConsoleDetailVM) {
			vm.AdminEmail, vm.AdminErr = typed, rc.Lang.T("console.err.email")
		})
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done="+done+"#brand-admins", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleWebhook(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	f := r.PostForm
	body := manage.WebhookWrite{URL: ptr(strings.TrimSpace(f.Get("url"))), Format: ptr(f.Get("format"))}
	if sec := f.Get("secret"); sec != "" {
		body.Secret = &sec
	}
	if err := s.manage.SetWebhook(r.Context(), rc.Email, id, body); err != nil {
		me, err := refusal(err)
		if err != nil {
			return err
		}
		return s.rerender(w, r, rc, http.StatusBadRequest, func(vm *ConsoleDetailVM) {
			// The URL typed is kept (it is the admin's own input); the secret never is.
			vm.WebhookForm = map[string]string{"url": f.Get("url"), "format": f.Get("format")}
			for _, fe := range me.Fields {
				vm.WebhookErrs[fe.Field] = fe.Message
			}
		})
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done=webhook-saved#webhook", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleNotificationDefaults(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	lang, tz := r.PostForm.Get("language"), strings.TrimSpace(r.PostForm.Get("timeZone"))
	err := s.manage.SetNotificationDefaults(r.Context(), rc.Email, id, manage.NotificationDefaultsWrite{Language: &lang, TimeZone: &tz})
	if err != nil {
		me, err := refusal(err)
		if err != nil {
			return err
		}
		return s.rerender(w, r, rc, http.StatusBadRequest, func(vm *ConsoleDetailVM) {
			vm.Defaults = map[string]string{"language": lang, "timeZone": tz}
			for _, fe := range me.Fields {
				vm.DefaultsErrs[fe.Field] = fe.Message
			}
		})
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done=defaults-saved#notification-defaults", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleWebhookDelete(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	if err := s.manage.DeleteWebhook(r.Context(), rc.Email, id); err != nil {
		return notFoundErr(err)
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done=webhook-deleted#webhook", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleWebhookTest(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	if err := s.manage.TestWebhook(r.Context(), rc.Email, id); err != nil {
		me, err := refusal(err)
		if err != nil {
			return err
		}
		return s.rerender(w, r, rc, http.StatusBadGateway, func(vm *ConsoleDetailVM) {
			vm.WebhookErrs["test"] = rc.Lang.T("console.webhook.testfailed", me.Detail)
		})
	}
	http.Redirect(w, r, "/console/integrations/"+id+"?done=webhook-tested#webhook", http.StatusSeeOther)
	return nil
}

func (s *Console) consoleDeleteConfirm(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	in, err := s.manage.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundErr(err)
	}
	s.Render(w, r, consoleDeletePage(s.consoleLayout(rc, rc.Lang.T("console.delete.title", in.Name)), in.ID, in.Name, ""))
	return nil
}

func (s *Console) consoleDelete(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	id := r.PathValue("id")
	in, err := s.manage.Get(r.Context(), id)
	if err != nil {
		return notFoundErr(err)
	}
	// The admin types the name, so a stray click never deletes a tenant.
	if strings.TrimSpace(r.PostForm.Get("confirm")) != in.Name {
		s.RenderStatus(w, r, http.StatusBadRequest, consoleDeletePage(s.consoleLayout(rc, rc.Lang.T("console.delete.title", in.Name)),
			in.ID, in.Name, rc.Lang.T("console.delete.mismatch")))
		return nil
	}
	if err := s.manage.Delete(r.Context(), rc.Email, id); err != nil {
		return notFoundErr(err)
	}
	http.Redirect(w, r, "/console?done=deleted", http.StatusSeeOther)
	return nil
}

// ---- audit trail

func (s *Console) consoleAudit(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	ctx := r.Context()
	before := int64(0)
	if raw := r.URL.Query().Get("before"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			return web.ErrNotFound
		}
		before = n
	}
	evs, err := s.manage.AuditEvents(ctx, before, auditPageSize+1)
	if err != nil {
		return err
	}
	next := ""
	if len(evs) > auditPageSize {
		evs = evs[:auditPageSize]
		next = fmt.Sprintf("/console/audit?before=%d", evs[len(evs)-1].ID)
	}
	s.Render(w, r, consoleAuditPage(s.consoleLayout(rc, rc.Lang.T("console.audit.title")), s.auditVMs(evs, rc), before > 0, next))
	return nil
}

// ---- health

// HealthVM is the health page: the signals an operator watches, for someone
// without Grafana.
type HealthVM struct {
	Rows     []HealthRowVM
	Pager    web.Pager
	Outbox   []OutboxVM
	Queues   []QueueVM
	Budgets  []BudgetVM
	Standby  *StandbyVM // nil without a read replica
	Failing  int        // integrations on this page that need someone
	Computed web.TimeVM
}

// HealthRowVM is one integration's health.
type HealthRowVM struct {
	ID, Name, Group, Icon string
	Status                web.Tag
	Health                web.Tag
	Message               string
	LastSuccess           web.TimeVM
	LastRun               *RunVM
}

// OutboxVM is one channel's oldest undelivered notice.
type OutboxVM struct {
	Channel string
	Oldest  web.TimeVM // unset: nothing waits
	Late    bool       // older than the outbox alert's 15 minutes
}

// QueueVM is one River queue's jobs still to run.
type QueueVM struct {
	Queue                                    string
	Available, Scheduled, Retryable, Running int64
}

// BudgetVM is one brand bucket that a 429 lowered or blocked.
type BudgetVM struct {
	Brand, Endpoint string
	Percent         int
	Blocked         web.TimeVM
	Throttled       int
}

// StandbyVM is where the read replica stands.
type StandbyVM struct {
	OK    bool
	Error string
	Lag   string
}

const healthPageSize = 50

func (s *Console) consoleHealth(w http.ResponseWriter, r *http.Request, rc *web.Request) error {
	v, err := s.manage.Health(r.Context(), healthPageSize, (web.PageParam(r)-1)*healthPageSize)
	if err != nil {
		return err
	}
	vm := HealthVM{Pager: web.NewPager(r, v.Total, healthPageSize), Computed: web.TimeAt(rc.Now, rc)}
	for _, h := range v.Rows {
		row := HealthRowVM{ID: h.ID, Name: h.Name, Group: h.FunctionalGroup, Icon: h.Icon,
			Status: integrationTag(h.Status, rc.Lang), Health: healthTag(h.Rank, rc.Lang), Message: h.StatusMessage,
			LastSuccess: s.Time(h.LastSuccessAt, rc)}
		if h.LastRun != nil {
			run := s.runVM(*h.LastRun, rc)
			row.LastRun = &run
		}
		if h.Rank <= store.HealthStale {
			vm.Failing++
		}
		vm.Rows = append(vm.Rows, row)
	}
	for _, ch := range microapps.Channels {
		o := OutboxVM{Channel: rc.Lang.T("console.health.channel." + string(ch))}
		if at, ok := v.OutboxOldest[ch]; ok {
			o.Oldest, o.Late = web.TimeAt(at, rc), rc.Now.Sub(at) > 15*time.Minute
		}
		vm.Outbox = append(vm.Outbox, o)
	}
	for _, q := range slices.Sorted(maps.Keys(v.Jobs)) {
		j := v.Jobs[q]
		vm.Queues = append(vm.Queues, QueueVM{Queue: q, Available: j["available"], Scheduled: j["scheduled"],
			Retryable: j["retryable"], Running: j["running"]})
	}
	for _, b := range v.Budgets {
		vm.Budgets = append(vm.Budgets, BudgetVM{Brand: b.BrandKey, Endpoint: b.Endpoint, Percent: int(b.Share*100 + 0.5),
			Blocked: s.Time(b.BlockedUntil, rc), Throttled: b.Throttled})
	}
	if s.standby != nil {
		st := s.standby()
		sv := &StandbyVM{OK: st.OK}
		if st.Err != nil {
			sv.Error = st.Err.Error()
		}
		if !st.FreshAsOf.IsZero() {
			sv.Lag = roundDuration(rc.Now.Sub(st.FreshAsOf))
		}
		vm.Standby = sv
	}
	s.Render(w, r, consoleHealthPage(s.consoleLayout(rc, rc.Lang.T("console.health.title")), vm))
	return nil
}

func healthTag(rank store.HealthRank, l web.Lang) web.Tag {
	t := map[store.HealthRank]struct{ key, tone string }{store.HealthError: {"error", "danger"},
		store.HealthFailing: {"failing", "danger"}, store.HealthStale: {"stale", "warning"},
		store.HealthPaused: {"paused", "neutral"}, store.HealthFine: {"fine", "success"}}[rank]
	return web.Tag{Key: t.key, Label: l.T("console.health.rank." + t.key), Tone: t.tone}
}
