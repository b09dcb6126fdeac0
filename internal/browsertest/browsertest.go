// Package browsertest starts headless Chromium for the browser tests of the
// pages and the console: where the browser is found, how it is started, and
// the console errors a page must not report.
package browsertest

import (
	"context"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium locates Debian's chromium (or MICROAPPS_CHROMIUM). Under CI a
// missing browser fails the test: .ci/run installs it, so absence is a bug.
// Elsewhere, and in -short mode, the test is skipped.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, c := range []string{os.Getenv("MICROAPPS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := osexec.LookPath(c); err == nil {
			if testing.Short() {
				t.Skip("browser test skipped in -short mode")
			}
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

// Browser is a headless Chromium tab and what its pages reported.
type Browser struct {
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	quiet    bool
}

// Start launches Chromium at chromium for at most timeout, in a 1280×900
// viewport, and records the errors its pages log. It stops with the test.
func Start(t testing.TB, chromium string, timeout time.Duration) *Browser {
	t.Helper()
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancel() })
	b := &Browser{Ctx: bctx}
	// The first call starts the browser; it must not carry a per-step timeout.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(bctx, b.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.quiet {
		return
	}
	switch e := ev.(type) {
	case *log.EventEntryAdded:
		// A page answered 404 or 422 on purpose is an "error" to the browser
		// too; only failures of other resources (our assets) count.
		if e.Entry != nil && e.Entry.Level == log.EntryLevelError &&
			!(strings.HasPrefix(e.Entry.Text, "Failed to load resource") && !strings.Contains(e.Entry.URL, "/static/")) {
			b.problems = append(b.problems, strings.TrimSpace(e.Entry.Text+" "+e.Entry.URL))
		}
	case *runtime.EventExceptionThrown:
		if e.ExceptionDetails != nil {
			b.problems = append(b.problems, e.ExceptionDetails.Text)
		}
	}
}

// Quiet stops (true) or resumes (false) recording errors, around pages that
// are not ours to judge.
func (b *Browser) Quiet(q bool) {
	b.mu.Lock()
	b.quiet = q
	b.mu.Unlock()
}

// Problems returns the errors the pages reported so far: a CSP violation, a
// script error, an asset that failed to load.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}
