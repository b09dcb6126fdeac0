package web

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/microapps/microapps/internal/browsertest"
)

// TestBrowser signs in through the dev sign-in page, walks every page in a
// real browser, checks that the CSP blocks nothing of ours, and saves
// screenshots at 1280 and 390 px wide.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := browsertest.Chromium(t)
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
	browser := browsertest.Start(t, chromium, 120*time.Second)
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

	for _, p := range browser.Problems() {
		t.Errorf("browser reported: %s", p)
	}
	t.Logf("screenshots in %s", strings.Join(dirs, ", "))
}
