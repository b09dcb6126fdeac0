package console

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/web"
)

func TestConsoleIsNotFoundForAnyoneElse(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	gets := []string{"/console", "/console/", "/console/integrations/new", "/console/integrations/" + intA,
		"/console/integrations/" + intA + "/runs", "/console/integrations/" + intA + "/delete", "/console/audit", "/console/nope"}
	posts := []string{"/console/integrations", "/console/integrations/" + intA, "/console/integrations/" + intA + "/syncs",
		"/console/integrations/" + intA + "/brand-admins", "/console/integrations/" + intA + "/brand-admins/remove",
		"/console/integrations/" + intA + "/webhook", "/console/integrations/" + intA + "/webhook/delete",
		"/console/integrations/" + intA + "/webhook/test", "/console/integrations/" + intA + "/delete"}
	// admin@example.com is a Brand Admin, not a platform admin.
	for _, user := range []string{"alice@example.com", "admin@example.com"} {
		for _, p := range gets {
			if rec := get(t, h, user, p); rec.Code != http.StatusNotFound {
				t.Errorf("%s GET %s: %d", user, p, rec.Code)
			}
		}
		for _, p := range posts {
			rec := postForm(t, h, user, p, url.Values{"email": {"x@example.com"}, "kind": {"full"}, "confirm": {"Sales EMEA"}})
			if rec.Code != http.StatusNotFound {
				t.Errorf("%s POST %s: %d", user, p, rec.Code)
			}
		}
		if strings.Contains(get(t, h, user, "/").Body.String(), `href="/console"`) {
			t.Errorf("%s is shown a link to the console", user)
		}
	}
	// The integration is still there and untouched.
	rec := get(t, h, platformAdmin, "/console/integrations/"+intA)
	if rec.Code != http.StatusOK {
		t.Fatalf("platform admin: %d", rec.Code)
	}
	doc := parse(t, rec)
	if got := attrs(doc.Find(`[data-testid="brand-admin"]`), "data-email"); strings.Join(got, ",") != "admin@example.com" {
		t.Errorf("brand admins after the refused posts: %v", got)
	}
	for _, p := range gets[:7] {
		if rec := get(t, h, platformAdmin, p); rec.Code != http.StatusOK {
			t.Errorf("platform admin GET %s: %d", p, rec.Code)
		}
	}
	if rec := get(t, h, "", "/console"); rec.Code != http.StatusUnauthorized {
		t.Errorf("no user: %d", rec.Code)
	}
}

func TestConsoleListShowsEveryIntegration(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	doc := parse(t, get(t, h, platformAdmin, "/console"))
	ids := attrs(doc.Find(`[data-testid="integration-row"]`), "data-integration-id")
	if len(ids) != 3 {
		t.Fatalf("rows %v", ids)
	}
	status := map[string]string{}
	rows := doc.Find(`[data-testid="integration-row"]`)
	for i := range rows.Length() {
		row := rows.Eq(i)
		id, _ := row.Attr("data-integration-id")
		st, _ := row.Find(`[data-testid="integration-status"]`).Attr("data-status")
		status[id] = st
	}
	if status[intA] != "active" || status[intB] != "error" || status[intC] != "active" {
		t.Errorf("statuses %v", status)
	}
	if !strings.Contains(doc.Find(`nav a[href="/console"]`).Text(), "Console") {
		t.Error("no console link in the navigation")
	}
}

func TestConsoleCreateKeepsWhatWasTypedButNeverTheSecret(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	const secret = "SecretToken-0123456789abcdef"
	form := url.Values{"name": {"Sales NA"}, "functionalGroup": {"Sales"}, "baseUrl": {"ftp://example.com/API/v3/"},
		"authMethod": {"token"}, "token": {secret}, "icon": {"star"}, "rateLimit.requestsPerMinute": {"9000"},
		"requestTimeoutSeconds": {"120"}, "schedule.fullSyncEvery": {"1h"}, "schedule.incrementalSyncEvery": {"15m"},
		"logging.enabled": {"on"}}
	rec := postForm(t, h, platformAdmin, "/console/integrations", form, "Accept-Language", "fr")
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	if strings.Contains(body, secret) {
		t.Fatal("the page holds the token")
	}
	doc := parse(t, rec)
	if lang, _ := doc.Find("html").Attr("lang"); lang != "fr" || !strings.Contains(doc.Find(".error-summary h2").Text(), "Il y a un problème") {
		t.Errorf("not in French: lang %q", lang)
	}
	fields := attrs(doc.Find(`[data-testid="field-error"]`), "data-field")
	if strings.Join(fields, ",") != "baseUrl,rateLimit.requestsPerMinute" {
		t.Errorf("errors on %v", fields)
	}
	for id, want := range map[string]string{"f-name": "Sales NA", "f-functionalGroup": "Sales", "f-baseUrl": "ftp://example.com/API/v3/",
		"f-rateLimit-requestsPerMinute": "9000", "f-token": ""} {
		if got, _ := doc.Find("#" + id).Attr("value"); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if _, ok := doc.Find(`#icon-star`).Attr("checked"); !ok {
		t.Error("the icon picked is not kept")
	}
	if _, ok := doc.Find(`#f-logging-enabled`).Attr("checked"); !ok {
		t.Error("the logging box is not kept")
	}
	if inv, _ := doc.Find(`#f-baseUrl`).Attr("aria-invalid"); inv != "true" {
		t.Error("the base URL is not marked invalid")
	}
	if rec := get(t, h, platformAdmin, "/console"); strings.Contains(rec.Body.String(), "Sales NA") {
		t.Error("the refused integration was stored")
	}

	// Not a number: refused by the form itself, nothing sent anywhere.
	form.Set("baseUrl", "https://iad1.qualtrics.com/API/v3/")
	form.Set("requestTimeoutSeconds", "soon")
	form.Set("rateLimit.requestsPerMinute", "100")
	rec = postForm(t, h, platformAdmin, "/console/integrations", form)
	if rec.Code != http.StatusBadRequest || strings.Join(attrs(parse(t, rec).Find(`[data-testid="field-error"]`), "data-field"), ",") != "requestTimeoutSeconds" {
		t.Errorf("non-number: %d", rec.Code)
	}
}

func TestConsoleChangesAreAuditedWithTheAdminsEmail(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	base := "/console/integrations/" + intA
	rec := postForm(t, h, platformAdmin, base+"/brand-admins", url.Values{"email": {"  Carol@Example.COM "}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("add: %d", rec.Code)
	}
	rec = postForm(t, h, platformAdmin, base+"/brand-admins", url.Values{"email": {"not an email"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("bad email: %d", rec.Code)
	}
	if v, _ := parse(t, rec).Find(`#admin-email`).Attr("value"); v != "not an email" {
		t.Errorf("typed email not kept: %q", v)
	}
	const hookSecret = "whsec-0123456789abcdef-XYZ"
	rec = postForm(t, h, platformAdmin, base+"/webhook", url.Values{"url": {"https://hooks.example.com/services/T0/B0/abc"},
		"format": {"slack"}, "secret": {hookSecret}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("webhook: %d %s", rec.Code, rec.Body.String())
	}
	rec = postForm(t, h, platformAdmin, base+"/syncs", url.Values{"kind": {"full"}})
	if rec.Code != http.StatusConflict || parse(t, rec).Find(`[data-testid="sync-error"]`).Length() != 1 {
		t.Errorf("sync without sync control: %d", rec.Code)
	}

	page := get(t, h, platformAdmin, base)
	body := page.Body.String()
	doc := parse(t, page)
	if got := attrs(doc.Find(`[data-testid="brand-admin"]`), "data-email"); strings.Join(got, ",") != "admin@example.com,carol@example.com" {
		t.Errorf("brand admins %v", got)
	}
	if strings.Contains(body, hookSecret) || strings.Contains(body, "/services/T0") {
		t.Error("the page shows the webhook's secret or path")
	}
	if got := doc.Find(`[data-testid="webhook-url"]`).Text(); got != "https://hooks.example.com/…" {
		t.Errorf("webhook shown as %q", got)
	}
	audit := parse(t, get(t, h, platformAdmin, "/console/audit"))
	actions := texts(audit.Find(`[data-testid="audit-event"] th`))
	if strings.Join(actions, ",") != "webhook.set,brand_admin.add" {
		t.Errorf("audit actions %v", actions)
	}
	if !strings.Contains(audit.Find(`[data-testid="audit-table"]`).Text(), platformAdmin) {
		t.Error("the actor is not the admin's email")
	}

	rec = postForm(t, h, platformAdmin, base+"/notification-defaults", url.Values{"language": {"fr"}, "timeZone": {"Mars/Olympus"}})
	if rec.Code != http.StatusBadRequest || strings.Join(attrs(parse(t, rec).Find(`[data-testid="field-error"]`), "data-field"), ",") != "timeZone" {
		t.Errorf("bad time zone: %d", rec.Code)
	}
	if rec := postForm(t, h, platformAdmin, base+"/notification-defaults", url.Values{"language": {"fr"}, "timeZone": {"Europe/Paris"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("defaults: %d", rec.Code)
	}
	doc = parse(t, get(t, h, platformAdmin, base))
	if v, _ := doc.Find(`#defaults-timeZone`).Attr("value"); v != "Europe/Paris" {
		t.Errorf("time zone shown %q", v)
	}
	if _, ok := doc.Find(`#defaults-language option[value="fr"]`).Attr("selected"); !ok {
		t.Error("French not selected")
	}

	// Delete needs the name typed.
	if rec := postForm(t, h, platformAdmin, base+"/delete", url.Values{"confirm": {"Sales"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("delete with the wrong name: %d", rec.Code)
	}
	if rec := postForm(t, h, platformAdmin, base+"/delete", url.Values{"confirm": {"Sales EMEA"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("delete: %d", rec.Code)
	}
	if rec := get(t, h, platformAdmin, base); rec.Code != http.StatusNotFound {
		t.Errorf("deleted integration: %d", rec.Code)
	}
}

func TestConsoleFormsAreProtected(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	path := "/console/integrations/" + intA + "/brand-admins"
	if rec := postForm(t, h, platformAdmin, path, url.Values{"email": {"eve@example.com"}}, "Sec-Fetch-Site", "cross-site"); rec.Code != http.StatusForbidden {
		t.Errorf("cross-site post: %d", rec.Code)
	}
	big := url.Values{"email": {"eve@example.com"}, "pad": {strings.Repeat("x", 100<<10)}}
	if rec := postForm(t, h, platformAdmin, path, big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("100 KiB form: %d", rec.Code)
	}
	doc := parse(t, get(t, h, platformAdmin, "/console/integrations/"+intA))
	if got := attrs(doc.Find(`[data-testid="brand-admin"]`), "data-email"); strings.Join(got, ",") != "admin@example.com" {
		t.Errorf("brand admins %v", got)
	}
	// Secrets are write-only inputs: never a value.
	for _, v := range attrs(doc.Find(`input[type="password"]`), "value") {
		if v != "" {
			t.Errorf("a password input carries %q", v)
		}
	}
}

func TestConsoleShowsQualtricsWarningsNextToTheirFields(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	doc := parse(t, get(t, h, platformAdmin, "/console/integrations/"+intA+"?done=created&warn=not-brand-admin,host-switched,<script>"))
	got := attrs(doc.Find(`[data-testid="field-warning"]`), "data-field")
	if strings.Join(got, ",") != "baseUrl,token" {
		t.Errorf("warnings next to %v", got)
	}
	if !strings.Contains(doc.Find(`[data-testid="qualtrics-warnings"]`).Text(), "Brand Admin") {
		t.Error("no summary of the warnings")
	}
	if strings.Contains(doc.Text(), "<script>") {
		t.Error("an unknown warning kind reached the page")
	}
}

func TestConsoleSettingsSaveAndRefuseInPlace(t *testing.T) {
	t.Parallel()
	h := newFixture(t).consoleServer(t)
	form := url.Values{"name": {"Sales EMEA"}, "functionalGroup": {"Sales"}, "baseUrl": {"https://iad1.qualtrics.com/API/v3/"},
		"icon": {"globe"}, "rateLimit.requestsPerMinute": {"600"}, "rateLimit.enabled": {"on"}, "requestTimeoutSeconds": {"60"},
		"schedule.fullSyncEvery": {"2h"}, "schedule.incrementalSyncEvery": {"10m"}, "schedule.verifyEvery": {"6h"}, "schedule.fullSyncWindow.start": {"01:00"},
		"schedule.fullSyncWindow.end": {"05:00"}, "schedule.fullSyncWindow.timeZone": {"Europe/Paris"}, "paused": {"on"}, "token": {""}}
	path := "/console/integrations/" + intA
	if rec := postForm(t, h, platformAdmin, path, form); rec.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", rec.Code, parse(t, rec).Find(".error-summary").Text())
	}
	doc := parse(t, get(t, h, platformAdmin, path))
	if st, _ := doc.Find(`[data-testid="integration-status"]`).Attr("data-status"); st != "paused" {
		t.Errorf("status %q after pausing", st)
	}
	for id, want := range map[string]string{"f-schedule-fullSyncEvery": "2h", "f-schedule-verifyEvery": "6h", "f-schedule-fullSyncWindow-timeZone": "Europe/Paris",
		"f-rateLimit-requestsPerMinute": "600", "f-token": ""} {
		if got, _ := doc.Find("#" + id).Attr("value"); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if _, open := doc.Find(`details.settings`).Attr("open"); open {
		t.Error("the settings are unfolded without a reason")
	}

	form.Set("schedule.incrementalSyncEvery", "3h")
	form.Set("name", "Sales EMEA renamed")
	rec := postForm(t, h, platformAdmin, path, form)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("bad schedule: %d", rec.Code)
	}
	doc = parse(t, rec)
	if got := attrs(doc.Find(`[data-testid="field-error"]`), "data-field"); strings.Join(got, ",") != "schedule.incrementalSyncEvery" {
		t.Errorf("errors on %v", got)
	}
	if _, open := doc.Find(`details.settings`).Attr("open"); !open {
		t.Error("the settings with an error are folded")
	}
	if v, _ := doc.Find(`#f-name`).Attr("value"); v != "Sales EMEA renamed" {
		t.Errorf("typed name not kept: %q", v)
	}
	if doc.Find(`[data-testid="integration-name"]`).Text() != "Sales EMEA" {
		t.Error("the refused rename was stored")
	}

	// Issue 36: the veto limits, saved and refused in place.
	form.Set("schedule.incrementalSyncEvery", "10m")
	form.Set("vetoMaxDeletePercent", "101")
	form.Set("vetoMinRows", "5")
	rec = postForm(t, h, platformAdmin, path, form)
	if got := attrs(parse(t, rec).Find(`[data-testid="field-error"]`), "data-field"); rec.Code != http.StatusBadRequest || strings.Join(got, ",") != "vetoMaxDeletePercent" {
		t.Errorf("veto limit 101: %d, errors on %v", rec.Code, got)
	}
	form.Set("vetoMaxDeletePercent", "30")
	if rec := postForm(t, h, platformAdmin, path, form); rec.Code != http.StatusSeeOther {
		t.Fatalf("save the veto: %d", rec.Code)
	}
	doc = parse(t, get(t, h, platformAdmin, path))
	for id, want := range map[string]string{"f-vetoMaxDeletePercent": "30", "f-vetoMinRows": "5"} {
		if got, _ := doc.Find("#" + id).Attr("value"); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
}

// Every console message has its French, and every key the console's code
// and templates name exists: a missing one would show as its key.
func TestConsoleMessagesAreComplete(t *testing.T) {
	t.Parallel()
	for k := range consoleMessages[web.LangEN] {
		if _, ok := consoleMessages[web.LangFR][k]; !ok {
			t.Errorf("%s has no French", k)
		}
	}
	for k := range consoleMessages[web.LangFR] {
		if _, ok := consoleMessages[web.LangEN][k]; !ok {
			t.Errorf("%s has no English", k)
		}
	}
	dynamic := []string{"console.phase.surveys", "console.phase.units", "console.phase.finish", "console.kind.full",
		"console.kind.incremental", "console.trigger.schedule", "console.trigger.admin", "console.trigger.create",
		"console.status.active", "console.status.paused", "console.status.error", "console.run.queued", "console.run.running",
		"console.run.succeeded", "console.run.failed", "console.delivery.pending", "console.delivery.sent",
		"console.delivery.failed", "console.delivery.skipped", "console.warn." + manage.WarnNotBrandAdmin,
		"console.warn." + manage.WarnHostSwitched, "console.f.token", "console.f.oauth.clientSecret",
		"console.defaults.lang.default", "console.defaults.lang.en", "console.defaults.lang.fr"}
	for _, f := range formFields {
		dynamic = append(dynamic, "console.f."+f)
	}
	for k := range consoleDone {
		dynamic = append(dynamic, "console.done."+k)
	}
	for _, ic := range manage.Icons() {
		dynamic = append(dynamic, "icon."+ic)
	}
	for _, key := range dynamic {
		if !web.LangEN.Has(key) {
			t.Errorf("%s has no message", key)
		}
	}
	re := regexp.MustCompile(`"(console\.[a-zA-Z.\-]+)"`)
	for _, file := range []string{"console.go", "console.templ"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			key := m[1]
			if strings.HasSuffix(key, ".") {
				continue // a prefix completed at run time
			}
			if !web.LangEN.Has(key) {
				t.Errorf("%s names %s, which has no message", file, key)
			}
		}
	}
}
