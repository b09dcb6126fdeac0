package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium locates Debian's chromium (or MICROAPPS_CHROMIUM). Under CI a
// missing browser fails the test: .ci/run installs it, so absence is a bug.
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("MICROAPPS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := osexec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "headless Chromium not found: install it with `apt-get install -y chromium` (or set MICROAPPS_CHROMIUM to its path)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBrowser signs in through the dev sign-in page, walks every page in a
// real browser, checks that the CSP blocks nothing of ours, and saves
// screenshots at 1280 and 390 px wide.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	f := newFixture(t)
	srv, err := New(Options{Store: f.store, AuthMode: AuthDev, AllowDevAuth: true,
		DevUsers: []string{"alice@example.com", "admin@example.com"}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	dirs := []string{t.TempDir()}
	if d := os.Getenv("MICROAPPS_SCREENSHOTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			if e.Entry != nil && e.Entry.Level == log.EntryLevelError {
				problems = append(problems, e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			if e.ExceptionDetails != nil {
				problems = append(problems, e.ExceptionDetails.Text)
			}
		}
	}

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

	// The first call starts the browser; it must not carry a per-step timeout.
	do("start", chromedp.EmulateViewport(1280, 900))
	if err := chromedp.Listen(bctx, listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	do("sign in as alice",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dev-user"]`)),
		chromedp.Click(chromedp.CSS(`form:has(input[value="alice@example.com"]) button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="survey-row"]`)),
	)
	rows := num("count rows", `document.querySelectorAll('[data-testid="survey-row"]').length`)
	title := str("title", chromedp.Title())
	if rows != 3 || title != "My active surveys – microapps" {
		t.Fatalf("My active surveys: %v rows, title %q", rows, title)
	}

	type pg struct{ name, path, wait string }
	pages := []pg{
		{"my-active-surveys", "/", `[data-testid="survey-row"]`},
		{"survey-details", "/surveys/" + intA + "/EMD_1R", `[data-testid="respond-link"]`},
		{"notifications", "/notifications", `[data-testid="notification"]`},
	}
	adminPages := []pg{
		{"open-surveys", "/admin/surveys", `[data-testid="survey-row"]`},
		{"survey-results", "/admin/surveys/" + intA + "/SV_1?distribution=EMD_1", `[data-testid="recipient-row"]`},
		{"distribution-data", "/admin/distributions/" + intA + "/EMD_1", `[data-testid="review-distributions-link"]`},
	}
	// From My active surveys to the details by clicking, as a user would.
	do("click to details",
		chromedp.Click(chromedp.CSS(`[data-survey-id="SV_1"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="respond-link"]`)),
	)
	if title := str("details title", chromedp.Title()); title != "Quarterly pulse – microapps" {
		t.Fatalf("details title %q", title)
	}
	if loc := str("details URL", chromedp.Location()); !strings.HasSuffix(loc, "/surveys/"+intA+"/EMD_1R") {
		t.Fatalf("details at %q", loc)
	}
	screens := func(list []pg) {
		for _, width := range []int64{1280, 390} {
			do(fmt.Sprintf("viewport %d", width), chromedp.EmulateViewport(width, 900))
			for _, p := range list {
				do(p.name, chromedp.Navigate(ts.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
				shoot(fmt.Sprintf("%s-%d", p.name, width))
			}
		}
	}
	screens(pages)

	// Tables become cards on a phone: the header row is visually hidden.
	do("phone layout", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="survey-row"]`)))
	if h := num("thead height", `document.querySelector('thead').getBoundingClientRect().height`); h > 1 {
		t.Errorf("table header still %.0f px tall at 390 px", h)
	}

	do("sign out and in as admin",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/signin"]`)),
		chromedp.Navigate(ts.URL+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dev-user"]`)),
		chromedp.Click(chromedp.CSS(`form:has(input[value="admin@example.com"]) button`)),
		chromedp.WaitVisible(chromedp.CSS(`nav a[href="/admin/surveys"]`)),
	)
	screens(adminPages)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser reported: %s", p)
	}
	t.Logf("screenshots in %s", strings.Join(dirs, ", "))
}
