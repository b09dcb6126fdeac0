package manage_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// rulesEnv is the service on a fresh database with a simulated brand.
type rulesEnv struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	svc   *manage.Service
	base  string
	token string
}

func newRulesEnv(t *testing.T, syncs manage.Syncs) *rulesEnv {
	t.Helper()
	brand := qualtricssim.Generate(5, qualtricssim.Spec{BrandID: "rules", Surveys: 1, Recipients: 5})
	sim := httptest.NewServer(qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}}))
	t.Cleanup(sim.Close)
	kr := mustKeyring(t)
	st := storetest.New(t)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	svc := manage.New(manage.Options{Store: st, Keyring: kr, Syncs: syncs, AllowedHosts: []string{"127.0.0.1"},
		WebhookAllowedHosts: []string{"hooks.internal.example"}, VerifyTimeout: 5 * time.Second, Now: func() time.Time { return now },
		SealWebhookSecret: func(id, secret string) (string, []byte, error) { return kr.Seal([]byte(secret), []byte("webhook:"+id)) }})
	return &rulesEnv{t: t, ctx: context.Background(), st: st, svc: svc, base: sim.URL + "/API/v3/", token: brand.Users[0].Tokens[0]}
}

func ptr[T any](v T) *T { return &v }

// valid is a patch that creates an integration; edit changes it.
func (e *rulesEnv) valid(edit func(*manage.IntegrationPatch)) manage.IntegrationPatch {
	p := manage.IntegrationPatch{Name: ptr("Sales EMEA"), BaseURL: ptr(e.base), Credential: &manage.Credential{Token: ptr(e.token)}}
	if edit != nil {
		edit(&p)
	}
	return p
}

// create creates a valid integration and returns its id.
func (e *rulesEnv) create() string {
	e.t.Helper()
	c, err := e.svc.Create(e.ctx, "pat@example.com", e.valid(nil))
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Integration.ID
}

// fields returns the fields an Invalid error names (nil for another error).
func fields(t *testing.T, err error) []string {
	t.Helper()
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Invalid {
		return nil
	}
	var out []string
	for _, f := range me.Fields {
		out = append(out, f.Field)
	}
	slices.Sort(out)
	return out
}

func TestCreateRefusesEachInvalidFieldAndStoresNothing(t *testing.T) {
	t.Parallel()
	e := newRulesEnv(t, nil)
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	for _, tc := range []struct {
		name string
		edit func(*manage.IntegrationPatch)
		want []string
	}{
		{"no name", func(p *manage.IntegrationPatch) { p.Name = nil }, []string{"name"}},
		{"a blank name", func(p *manage.IntegrationPatch) { p.Name = ptr("  ") }, []string{"name"}},
		{"a name of 201 characters", func(p *manage.IntegrationPatch) { p.Name = ptr(strings.Repeat("n", 201)) }, []string{"name"}},
		{"no base URL", func(p *manage.IntegrationPatch) { p.BaseURL = nil }, []string{"baseUrl"}},
		{"a base URL off Qualtrics", func(p *manage.IntegrationPatch) { p.BaseURL = ptr("https://evil.example.com/API/v3/") }, []string{"baseUrl"}},
		{"an unknown icon", func(p *manage.IntegrationPatch) { p.Icon = ptr("skull") }, []string{"icon"}},
		{"a rate of 0 a minute", func(p *manage.IntegrationPatch) { p.RequestsPerMinute = ptr(0) }, []string{"rateLimit.requestsPerMinute"}},
		{"a timeout of 601 s", func(p *manage.IntegrationPatch) { p.RequestTimeoutSeconds = ptr(601) }, []string{"requestTimeoutSeconds"}},
		{"a veto of 0% and -1 rows", func(p *manage.IntegrationPatch) { p.VetoMaxDeletePercent, p.VetoMinRows = ptr(0), ptr(-1) },
			[]string{"veto.maxDeletePercent", "veto.minRows"}},
		{"the error status", func(p *manage.IntegrationPatch) { p.Status = ptr(microapps.IntegrationError) }, []string{"status"}},
		{"no credential", func(p *manage.IntegrationPatch) { p.Credential = nil }, []string{"token"}},
		{"a token and an OAuth client", func(p *manage.IntegrationPatch) {
			p.Credential.OAuth = &manage.OAuthClient{ClientID: ptr("id"), ClientSecret: ptr("secret")}
		}, []string{"token"}},
		{"an OAuth client without its secret", func(p *manage.IntegrationPatch) {
			p.Credential = &manage.Credential{OAuth: &manage.OAuthClient{ClientID: ptr("id")}}
		}, []string{"oauth.clientSecret"}},
		{"a token with a space", func(p *manage.IntegrationPatch) { p.Credential.Token = ptr("a b") }, []string{"token"}},
		{"full syncs every minute", func(p *manage.IntegrationPatch) { p.FullSyncEvery = d("1m") }, []string{"schedule.fullSyncEvery"}},
		{"incremental syncs no more often than full ones", func(p *manage.IntegrationPatch) { p.IncrementalSyncEvery = d("2h") },
			[]string{"schedule.incrementalSyncEvery"}},
		{"verification more often than full syncs", func(p *manage.IntegrationPatch) { p.FullSyncEvery, p.VerifyEvery = d("48h"), d("24h") },
			[]string{"schedule.verifyEvery"}},
		{"a window in no time zone", func(p *manage.IntegrationPatch) {
			p.SetFullSyncWindow, p.FullSyncWindow = true, &microapps.SyncWindow{Start: "01:00", End: "05:00", TimeZone: "Mars/Olympus"}
		}, []string{"schedule.fullSyncWindow.timeZone"}},
		{"a window starting at 25:00", func(p *manage.IntegrationPatch) {
			p.SetFullSyncWindow, p.FullSyncWindow = true, &microapps.SyncWindow{Start: "25:00", End: "05:00", TimeZone: "UTC"}
		}, []string{"schedule.fullSyncWindow.start"}},
		{"an unknown deep link", func(p *manage.IntegrationPatch) { p.DeepLinks = map[string]string{"home": "https://{host}/"} },
			[]string{"deepLinks.home"}},
		{"a deep link with a foreign placeholder", func(p *manage.IntegrationPatch) {
			p.DeepLinks = map[string]string{"results": "https://{host}/{distributionId}"}
		}, []string{"deepLinks.results"}},
		{"what the front end could not read comes back with the rest", func(p *manage.IntegrationPatch) {
			p.InputErrors = []microapps.FieldError{{Field: "schedule.fullSyncEvery", Message: "must be a duration"}}
			p.Icon = ptr("skull")
		}, []string{"icon", "schedule.fullSyncEvery"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(e.ctx, "pat@example.com", e.valid(tc.edit))
			if got := fields(t, err); !slices.Equal(got, tc.want) {
				t.Fatalf("refused fields %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	page, err := e.st.ListIntegrationsPage(e.ctx, store.IntegrationQuery{Limit: 10})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("refused integrations were stored: %d %v", len(page.Items), err)
	}
}

func TestCreateFillsTheDefaultsAndAudits(t *testing.T) {
	t.Parallel()
	e := newRulesEnv(t, nil)
	c, err := e.svc.Create(e.ctx, "pat@example.com", e.valid(nil))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Integration
	if in.FunctionalGroup != "Sales EMEA" || in.Icon != "clipboard" || in.RequestsPerMinute != 1500 || in.RequestTimeoutSeconds != 120 ||
		in.Status != microapps.IntegrationActive || in.AuthMethod != microapps.AuthToken {
		t.Errorf("defaults: %+v", in)
	}
	if in.Schedule.Effective() != microapps.DefaultSchedule || in.Veto != microapps.DefaultVetoRule {
		t.Errorf("schedule %+v, veto %+v", in.Schedule, in.Veto)
	}
	if strings.Contains(string(in.SecretSealed), e.token) || in.SecretHint == "" {
		t.Error("the token is not sealed, or has no hint")
	}
	if c.FirstRun != nil {
		t.Error("a first run was queued without sync control")
	}
	evs, err := e.svc.IntegrationAuditEvents(e.ctx, in.ID, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != "integration.create" || evs[0].Actor != "pat@example.com" {
		t.Fatalf("audit %+v %v", evs, err)
	}
}

func TestUpdateChangesOnlyWhatThePatchNames(t *testing.T) {
	t.Parallel()
	e := newRulesEnv(t, nil)
	id := e.create()
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	window := &microapps.SyncWindow{Start: "01:00", End: "05:00", TimeZone: "Europe/Paris"}
	for _, tc := range []struct {
		name  string
		patch manage.IntegrationPatch
		check func(store.Integration) bool
		audit []string
	}{
		{"a name", manage.IntegrationPatch{Name: ptr(" Sales ")},
			func(in store.Integration) bool { return in.Name == "Sales" && in.FunctionalGroup == "Sales EMEA" }, []string{"name"}},
		{"one period of the schedule", manage.IntegrationPatch{IncrementalSyncEvery: d("30m")},
			func(in store.Integration) bool {
				return in.IncrementalSyncEvery == 30*time.Minute && in.FullSyncEvery == time.Hour
			}, []string{"schedule"}},
		{"a full sync window", manage.IntegrationPatch{SetFullSyncWindow: true, FullSyncWindow: window},
			func(in store.Integration) bool { return in.FullSyncWindow != nil && *in.FullSyncWindow == *window }, []string{"schedule"}},
		{"no window any more", manage.IntegrationPatch{SetFullSyncWindow: true},
			func(in store.Integration) bool { return in.FullSyncWindow == nil }, []string{"schedule"}},
		{"paused", manage.IntegrationPatch{Status: ptr(microapps.IntegrationPaused)},
			func(in store.Integration) bool { return in.Status == microapps.IntegrationPaused }, []string{"status"}},
		{"a deep link, and the rate limit", manage.IntegrationPatch{DeepLinks: map[string]string{"results": "https://{host}/r/{surveyId}"},
			RateLimitEnabled: ptr(true), RequestsPerMinute: ptr(600)},
			func(in store.Integration) bool {
				return in.DeepLinks["results"] == "https://{host}/r/{surveyId}" && in.RateLimitEnabled && in.RequestsPerMinute == 600
			}, []string{"deepLinks", "rateLimit"}},
		{"a deep link back to its default", manage.IntegrationPatch{DeepLinks: map[string]string{"results": ""}},
			func(in store.Integration) bool { _, ok := in.DeepLinks["results"]; return !ok }, []string{"deepLinks"}},
		{"the veto rule", manage.IntegrationPatch{VetoMaxDeletePercent: ptr(100)},
			func(in store.Integration) bool {
				return in.Veto == microapps.VetoRule{MaxDeletePercent: 100, MinRows: 10}
			}, []string{"veto"}},
	} {
		// In order: each case starts from where the last one left.
		before, _ := e.svc.Get(e.ctx, id)
		after, _, err := e.svc.Update(e.ctx, "pat@example.com", id, tc.patch)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.check(after) {
			t.Errorf("%s: stored %+v", tc.name, after)
		}
		if after.BaseURL != before.BaseURL || after.SecretKeyID != before.SecretKeyID || after.Icon != before.Icon {
			t.Errorf("%s: changed what it did not name", tc.name)
		}
		evs, _ := e.svc.IntegrationAuditEvents(e.ctx, id, 0, 1)
		if got := evs[0].Details["fields"]; len(evs) != 1 || !sameStrings(got, tc.audit) {
			t.Errorf("%s: audited fields %v, want %v", tc.name, got, tc.audit)
		}
	}
	// A refused change writes nothing, the valid part included.
	before, _ := e.svc.Get(e.ctx, id)
	if _, _, err := e.svc.Update(e.ctx, "pat@example.com", id, manage.IntegrationPatch{Name: ptr("Renamed"), Icon: ptr("skull")}); fields(t, err) == nil {
		t.Fatalf("an unknown icon was taken: %v", err)
	}
	if after, _ := e.svc.Get(e.ctx, id); after.Name != before.Name {
		t.Fatal("half of a refused change was written")
	}
	if _, _, err := e.svc.Update(e.ctx, "pat@example.com", "00000000-0000-4000-8000-000000000000", manage.IntegrationPatch{Name: ptr("x")}); !isKind(err, manage.NotFound) {
		t.Fatalf("an unknown integration: %v", err)
	}
}

func sameStrings(got any, want []string) bool {
	list, ok := got.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i, v := range list {
		if v != want[i] {
			return false
		}
	}
	return true
}

func isKind(err error, k manage.Kind) bool {
	var me *manage.Error
	return errors.As(err, &me) && me.Kind == k
}

func TestSyncRequestsFollowTheRules(t *testing.T) {
	t.Parallel()
	without := newRulesEnv(t, nil)
	c, err := without.svc.Create(without.ctx, "pat@example.com", without.valid(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := without.svc.TriggerSync(without.ctx, "pat", c.Integration.ID, microapps.SyncFull); !isKind(err, manage.Unavailable) {
		t.Fatalf("without sync control: %v", err)
	}
	e := newRulesEnv(t, nil)
	e.svc = manage.New(manage.Options{Store: e.st, Syncs: storetest.QueuedSyncs{Store: e.st}, Keyring: mustKeyring(t), AllowedHosts: []string{"127.0.0.1"}})
	c, err = e.svc.Create(e.ctx, "pat@example.com", e.valid(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstRun == nil || c.FirstRun.Kind != microapps.SyncFull || c.FirstRun.Trigger != microapps.TriggerCreate {
		t.Fatalf("first run %+v", c.FirstRun)
	}
	id := c.Integration.ID
	for _, tc := range []struct {
		name     string
		id       string
		kind     microapps.SyncKind
		override bool
		wantKind manage.Kind // 0: accepted
		field    string
	}{
		{"an unknown kind", id, "partial", false, manage.Invalid, "kind"},
		{"an override of an incremental", id, microapps.SyncIncremental, true, manage.Invalid, "overrideVeto"},
		{"an incremental before the first full sync succeeded", id, microapps.SyncIncremental, false, manage.Conflict, "kind"},
		{"an unknown integration", "00000000-0000-4000-8000-000000000000", microapps.SyncFull, false, manage.NotFound, ""},
		{"a full sync while the first is queued joins it", id, microapps.SyncFull, false, 0, ""},
		{"an override given to the run already queued", id, microapps.SyncFull, true, 0, ""},
	} {
		run, created, err := e.svc.TriggerSyncOverride(e.ctx, "pat@example.com", tc.id, tc.kind, tc.override)
		var me *manage.Error
		switch {
		case tc.wantKind == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantKind == 0:
			if created || run.ID != c.FirstRun.ID || run.OverrideVeto != tc.override {
				t.Errorf("%s: run %d created %v override %v", tc.name, run.ID, created, run.OverrideVeto)
			}
		case !errors.As(err, &me) || me.Kind != tc.wantKind:
			t.Errorf("%s: %v, want kind %d", tc.name, err, tc.wantKind)
		case tc.field != "" && me.Field != tc.field && !slices.Contains(fields(t, err), tc.field):
			t.Errorf("%s: names %q %v, want %q", tc.name, me.Field, fields(t, err), tc.field)
		}
	}
}

func TestBrandAdminsAndWebhooksAreChecked(t *testing.T) {
	t.Parallel()
	e := newRulesEnv(t, nil)
	id := e.create()
	for _, tc := range []struct {
		raw, want string
	}{{" Ana@Example.COM ", "ana@example.com"}, {"Ana <ana@example.com>", ""}, {"ana", ""}, {"anä@example.com", ""}} {
		got, err := e.svc.PutBrandAdmin(e.ctx, "pat", id, tc.raw)
		if tc.want == "" && fields(t, err) == nil || tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("PutBrandAdmin(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	if admins, _ := e.svc.BrandAdmins(e.ctx, id); !slices.Equal(admins, []string{"ana@example.com"}) {
		t.Errorf("admins %v", admins)
	}
	for _, tc := range []struct {
		name  string
		w     manage.WebhookWrite
		field string // "": accepted
	}{
		{"no URL", manage.WebhookWrite{}, "url"},
		{"a loopback address", manage.WebhookWrite{URL: ptr("https://127.0.0.1/hook")}, "url"},
		{"plain http elsewhere than the allowed hosts", manage.WebhookWrite{URL: ptr("http://hooks.example.com/x")}, "url"},
		{"an unknown format", manage.WebhookWrite{URL: ptr("https://hooks.example.com/x"), Format: ptr("xml")}, "format"},
		{"a short secret", manage.WebhookWrite{URL: ptr("https://hooks.example.com/x"), Secret: ptr("short")}, "secret"},
		{"plain http to an allowed host", manage.WebhookWrite{URL: ptr("http://hooks.internal.example/x"), Format: ptr("teams")}, ""},
		{"https, signed", manage.WebhookWrite{URL: ptr("https://hooks.example.com/x?key=s3cret"), Secret: ptr("0123456789abcdef")}, ""},
	} {
		err := e.svc.SetWebhook(e.ctx, "pat", id, tc.w)
		if got := fields(t, err); tc.field == "" && err != nil || tc.field != "" && !slices.Contains(got, tc.field) {
			t.Errorf("%s: %v, want %q refused", tc.name, err, tc.field)
		}
	}
	wh, err := e.svc.Webhook(e.ctx, id)
	if err != nil || wh.URL != "https://hooks.example.com/…" || !wh.Signed || wh.Format != microapps.WebhookJSON {
		t.Errorf("webhook shown as %+v (%v)", wh, err)
	}
}

func mustKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
