package replica_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/microapps/microapps/internal/browsertest"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store/storetest"
)

const consoleAdminToken = "console-test-admin-token-0123456789"

// TestConsoleInABrowser runs the whole replica (River workers, the simulated
// Qualtrics, dev sign-in) and walks the console as a platform admin would:
// a wrong token is refused next to its field with what was typed kept, the
// fixed one creates the integration, its first full sync shows up as
// succeeded without reloading the page, an incremental follows, a Brand
// Admin is added; a non-admin gets 404. It saves screenshots of every
// console page at 1280 and 390 px (MICROAPPS_SCREENSHOTS_DIR keeps them).
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	chromium := browsertest.Chromium(t)

	brand := qualtricssim.Generate(7, qualtricssim.Spec{BrandID: "console-sales", Surveys: 4, Recipients: 120,
		Emails: []string{"alice@example.com"}})
	brand2 := qualtricssim.Generate(8, qualtricssim.Spec{BrandID: "console-cs", Surveys: 3, Recipients: 60})
	sim := httptest.NewServer(qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand, brand2}}))
	t.Cleanup(sim.Close)
	simURL := sim.URL + "/API/v3/"
	goodToken := brand.Users[0].Tokens[0]

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	rep, err := replica.New(context.Background(), replica.Options{
		Store: st, HTTPAddr: "127.0.0.1:0", Keyring: kr, AdminTokens: []string{consoleAdminToken},
		AuthMode: "dev", DevUsers: []string{"pat@example.com", "alice@example.com"},
		PlatformAdmins:        []string{"Pat@Example.com"},
		QualtricsAllowedHosts: []string{"127.0.0.1"}, Workers: 2,
		FetchCooldown: 50 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond, NoPeriodicJobs: true,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rep.Close)
	serveCtx, stopServe := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- rep.Serve(serveCtx, ready) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-served:
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServe(); <-served })

	// A second integration made through the REST API, so the list and the
	// audit trail show both front ends.
	body, _ := json.Marshal(map[string]any{"name": "Customer Success", "icon": "people", "baseUrl": simURL,
		"token": brand2.Users[0].Tokens[0], "logging": map[string]any{"enabled": true}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/integrations", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+consoleAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("REST create: %d", resp.StatusCode)
	}

	dirs := []string{t.TempDir()}
	if d := os.Getenv("MICROAPPS_SCREENSHOTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	browser := browsertest.Start(t, chromium, 180*time.Second)
	bctx := browser.Ctx
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	str := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	num := func(step, js string) float64 {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[float64](js))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	// waitFor polls a condition across page loads (Poll stops at a navigation).
	waitFor := func(step, js string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not true after 30 s (%v)", step, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	html := func() string {
		return str("page source", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		for _, d := range dirs {
			if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Signed out, the console sends to sign-in like every page.
	do("sign in as the platform admin",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dev-user"]`)),
		chromedp.Click(chromedp.CSS(`form:has(input[value="pat@example.com"]) button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-row"]`)),
	)
	if n := num("rows", `document.querySelectorAll('[data-testid="integration-row"]').length`); n != 1 {
		t.Fatalf("%v integration rows before creating one", n)
	}

	// A wrong token: Qualtrics' verdict next to the token field, what was
	// typed kept, the secret gone.
	const wrongToken = "WrongToken0000000000000000000000"
	do("fill the create form",
		chromedp.Click(chromedp.CSS(`a[href="/console/integrations/new"].button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "Sales EMEA"),
		chromedp.SendKeys(chromedp.CSS(`#f-functionalGroup`), "Sales"),
		chromedp.SetValue(chromedp.CSS(`#f-baseUrl`), simURL),
		chromedp.SendKeys(chromedp.CSS(`#f-token`), wrongToken),
		chromedp.Click(chromedp.CSS(`label[for="icon-chart"]`)),
		chromedp.Click(chromedp.CSS(`#f-logging-enabled`)),
		chromedp.Click(chromedp.CSS(`[data-testid="save-integration"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="field-error"][data-field="token"]`)),
	)
	if v := str("name kept", chromedp.Value(chromedp.CSS(`#f-name`))); v != "Sales EMEA" {
		t.Errorf("name after the refusal: %q", v)
	}
	if v := str("token emptied", chromedp.Value(chromedp.CSS(`#f-token`))); v != "" {
		t.Errorf("the token came back into the form: %q", v)
	}
	if strings.Contains(html(), wrongToken) {
		t.Error("the page holds the typed token")
	}
	verdict := str("verdict", chromedp.Text(chromedp.CSS(`[data-testid="field-error"][data-field="token"]`)))
	if !strings.Contains(verdict, "401") {
		t.Errorf("the token's error does not give Qualtrics' answer: %q", verdict)
	}
	for _, width := range []int64{1280, 390} {
		do("viewport", chromedp.EmulateViewport(width, 900))
		shoot(fmt.Sprintf("console-new-error-%d", width))
	}
	do("viewport", chromedp.EmulateViewport(1280, 900))

	// The right token: created, and the first full sync turns up as
	// succeeded by itself (the runs section refreshes without a reload).
	do("fix the token",
		chromedp.SendKeys(chromedp.CSS(`#f-token`), goodToken),
		chromedp.Click(chromedp.CSS(`[data-testid="save-integration"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-name"]`)),
	)
	if strings.Contains(html(), goodToken) {
		t.Error("the integration page holds the token")
	}
	mark := num("mark the page", `window.__consoleMark = 1`)
	do("first sync succeeds", chromedp.WaitVisible(chromedp.CSS(`[data-testid="sync-run"][data-status="succeeded"]`)))
	if num("same page", `window.__consoleMark || 0`) != mark {
		t.Error("the page was reloaded to show the finished sync")
	}
	if n := num("endpoints", `document.querySelectorAll('[data-testid="sync-run"] details tbody tr').length`); n < 3 {
		t.Errorf("the run lists API calls for %v endpoints", n)
	}

	do("incremental sync",
		chromedp.Click(chromedp.CSS(`[data-testid="sync-incremental"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#runs li[data-testid="sync-run"]:nth-of-type(2)`)),
	)
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll('[data-testid="sync-run"][data-status="succeeded"]').length === 2`,
		chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		runs, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('[data-testid="sync-run"]')).map(e => e.dataset.status + ': ' + e.textContent.replace(/\s+/g, ' ')).join('\n') + '\n' + location.href + '\n' + (document.querySelector('[data-testid="sync-error"]') || {}).textContent`))
		t.Fatalf("the incremental sync did not show as succeeded: %v\n%s", err, runs)
	}
	if k := str("kinds", chromedp.Evaluate[string](`document.querySelector('[data-testid="sync-run"] strong').textContent`)); k != "Incremental sync" {
		t.Errorf("newest run is %q", k)
	}

	do("add a Brand Admin",
		chromedp.SendKeys(chromedp.CSS(`#admin-email`), " Carol@Example.com "),
		chromedp.Click(chromedp.CSS(`[data-testid="add-brand-admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="brand-admin"][data-email="carol@example.com"]`)),
	)
	// Issue 36: the veto limits are set in the settings form; a value out of
	// range is refused next to its field.
	do("veto limit out of range",
		chromedp.Click(chromedp.CSS(`details.settings > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-vetoMaxDeletePercent`)),
		chromedp.SetValue(chromedp.CSS(`#f-vetoMaxDeletePercent`), "0"),
		chromedp.Click(chromedp.CSS(`[data-testid="save-integration"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="field-error"][data-field="vetoMaxDeletePercent"]`)),
	)
	do("veto limits",
		chromedp.WaitVisible(chromedp.CSS(`#f-vetoMaxDeletePercent`)),
		chromedp.SetValue(chromedp.CSS(`#f-vetoMaxDeletePercent`), "30"),
		chromedp.SetValue(chromedp.CSS(`#f-vetoMinRows`), "5"),
		chromedp.Click(chromedp.CSS(`[data-testid="save-integration"]`)),
	)
	waitFor("the veto limits saved", `location.search.includes('done=saved')`)
	if errs := str("errors after saving", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('[data-testid="field-error"], .error-summary')).map(e => e.textContent).join(' | ')`)); errs != "" {
		t.Errorf("saving the veto limits: %s", errs)
	}
	if v := str("veto saved", chromedp.Evaluate[string](`document.querySelector('#f-vetoMaxDeletePercent').value`)); v != "30" {
		t.Errorf("the settings form shows a veto limit of %q after saving 30", v)
	}
	detailURL := str("detail URL", chromedp.Location())
	detailPath := detailURL[len(base):]
	if i := strings.IndexAny(detailPath, "?#"); i >= 0 {
		detailPath = detailPath[:i]
	}
	if strings.Contains(html(), goodToken) {
		t.Error("the integration page holds the token")
	}
	id := strings.TrimPrefix(detailPath, "/console/integrations/")
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/integrations/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+consoleAdminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		var got struct {
			Veto struct{ MaxDeletePercent, MinRows int } `json:"veto"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Veto.MaxDeletePercent != 30 || got.Veto.MinRows != 5 {
			t.Errorf("the API gives the veto %+v after the console set 30%% and 5", got.Veto)
		}
	}

	type pg struct{ name, path, wait string }
	pages := []pg{
		{"console-list", "/console", `[data-testid="integration-row"]`},
		{"console-new", "/console/integrations/new", `[data-testid="integration-form"]`},
		{"console-integration", detailPath, `[data-testid="sync-run"]`},
		{"console-delete", detailPath + "/delete", `[data-testid="confirm-delete"]`},
		{"console-audit", "/console/audit", `[data-testid="audit-event"]`},
		{"console-health", "/console/health", `[data-testid="health-integration"]`},
	}
	for _, width := range []int64{1280, 390} {
		do("viewport", chromedp.EmulateViewport(width, 900))
		for _, p := range pages {
			do(p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
			shoot(fmt.Sprintf("%s-%d", p.name, width))
		}
	}
	do("list", chromedp.Navigate(base+"/console"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-row"]`)))
	if n := num("list rows", `document.querySelectorAll('[data-testid="integration-row"]').length`); n != 2 {
		t.Errorf("%v integration rows after creating one", n)
	}
	if n := num("active", `document.querySelectorAll('[data-testid="integration-status"][data-status="active"]').length`); n != 2 {
		t.Errorf("%v integrations shown active", n)
	}
	do("audit", chromedp.Navigate(base+"/console/audit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-event"]`)))
	audit := str("audit text", chromedp.Text(chromedp.CSS(`[data-testid="audit-table"]`)))
	for _, want := range []string{"pat@example.com", "integration.create", "sync.trigger", "brand_admin.add", "admin-token:"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit trail lacks %q", want)
		}
	}

	// River's own UI, for platform admins only.
	browser.Quiet(true) // River's own UI is not ours to judge
	do("viewport", chromedp.EmulateViewport(1280, 900))
	do("jobs", chromedp.Navigate(base+"/console/jobs/"), chromedp.WaitReady(chromedp.CSS(`#root`)))
	jctx, jcancel := context.WithTimeout(bctx, 20*time.Second)
	_, err = chromedp.Run(jctx, chromedp.Poll[bool](`document.querySelectorAll('#root a').length > 3`, chromedp.WithPollingInterval(200*time.Millisecond)))
	jcancel()
	browser.Quiet(false)
	if err != nil {
		t.Errorf("River's UI did not render under /console/jobs/: %v", err)
	} else {
		for _, width := range []int64{1280, 390} {
			do("viewport", chromedp.EmulateViewport(width, 900), chromedp.Sleep(500*time.Millisecond))
			shoot(fmt.Sprintf("console-jobs-%d", width))
		}
	}

	// Anyone else: 404 on the console and on the job UI.
	do("sign in as alice",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dev-user"]`)),
		chromedp.Click(chromedp.CSS(`form:has(input[value="alice@example.com"]) button`)),
	)
	waitFor("signed in as alice", `!!document.querySelector('.user') && document.querySelector('.user').textContent.includes('alice@')`)
	for _, p := range []string{"/console", detailPath, "/console/audit", "/console/jobs/"} {
		do("alice "+p, chromedp.Navigate(base+p), chromedp.WaitReady(chromedp.CSS(`main`)))
		if title := str("title", chromedp.Title()); title != "Page not found – microapps" {
			t.Errorf("alice on %s sees %q", p, title)
		}
	}
	if n := num("console link", `document.querySelectorAll('a[href="/console"]').length`); n != 0 {
		t.Error("alice's navigation links to the console")
	}

	for _, p := range browser.Problems() {
		t.Errorf("browser reported: %s", p)
	}
}
