package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/internal/pgcluster"
	"github.com/microapps/microapps/store/storetest"
)

// TestDemoServesSurveysToADemoUser runs the whole program the way a newcomer
// does: `microapps demo` on a fresh database, then a demo user signs in and
// sees surveys and notifications.
func TestDemoServesSurveysToADemoUser(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	addr := freeAddr(t)
	out, stop := startDemo(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, []string{"demo"}, envOf(map[string]string{
			"MICROAPPS_DATABASE_URL": dbURL,
			"MICROAPPS_HTTP_ADDR":    addr,
		}), out)
	})
	printed := out.String()
	if !strings.Contains(printed, "an existing server, whose data the demo keeps") {
		t.Errorf("the demo does not say it uses the server it was given:\n%s", printed)
	}
	for _, want := range []string{"first full sync of Sales", "first full sync of Customer Success", "alice@example.com", "Bearer demo-admin-", "pat@example.com"} {
		if !strings.Contains(printed, want) {
			t.Errorf("demo output lacks %q:\n%s", want, printed)
		}
	}

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := "http://" + addr
	resp, err := client.PostForm(base+"/signin/dev", url.Values{"email": {"alice@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page := get(t, client, base+"/")
	rows := regexp.MustCompile(`data-testid="survey-row"`).FindAllStringIndex(page, -1)
	if len(rows) == 0 {
		t.Fatalf("My active surveys has no rows for alice:\n%s", page)
	}
	if !strings.Contains(page, "Quarterly pulse: how are we doing?") {
		t.Errorf("the survey staged after the first sync is not on the page")
	}
	feed := get(t, client, base+"/notifications")
	if !strings.Contains(feed, `data-kind="new_survey"`) {
		t.Errorf("no new_survey notification in alice's feed")
	}
	t.Logf("alice sees %d surveys", len(rows))

	// Bob's invitation to that survey bounced: nothing in his list or feed,
	// and carol (Brand Admin of Sales) sees him as bounced in Survey results.
	bobJar, _ := cookiejar.New(nil)
	bob := &http.Client{Jar: bobJar, Timeout: 10 * time.Second}
	if resp, err := bob.PostForm(base+"/signin/dev", url.Values{"email": {"bob@example.com"}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if page := get(t, bob, base+"/"); strings.Contains(page, "Quarterly pulse") {
		t.Errorf("bob's bounced invitation is in his My active surveys")
	}
	if feed := get(t, bob, base+"/notifications"); strings.Contains(feed, "Quarterly pulse") {
		t.Errorf("bob was notified of a survey whose invitation bounced")
	}
	carolJar, _ := cookiejar.New(nil)
	carol := &http.Client{Jar: carolJar, Timeout: 10 * time.Second}
	if resp, err := carol.PostForm(base+"/signin/dev", url.Values{"email": {"carol@example.com"}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	open := get(t, carol, base+"/admin/surveys")
	m := regexp.MustCompile(`href="(/admin/surveys/[^"]+)"[^>]*>[^<]*Quarterly pulse`).FindStringSubmatch(open)
	if m == nil {
		t.Fatalf("carol's Open surveys has no link to the staged survey:\n%s", open)
	}
	results := get(t, carol, base+m[1])
	bobRow := regexp.MustCompile(`(?s)bob@example\.com.{0,600}?</tr>`).FindString(results)
	if bobRow == "" || !strings.Contains(bobRow, "Bounced") {
		t.Errorf("Survey results does not show bob as bounced: %q", bobRow)
	}
	if resp, err := client.Get(base + "/console"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("alice on /console: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	// The demo's platform admin runs the console.
	jar2, _ := cookiejar.New(nil)
	pat := &http.Client{Jar: jar2, Timeout: 10 * time.Second}
	resp, err = pat.PostForm(base+"/signin/dev", url.Values{"email": {"pat@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	console := get(t, pat, base+"/console")
	if n := strings.Count(console, `data-testid="integration-row"`); n != 2 {
		t.Errorf("the console lists %d integrations for pat", n)
	}
	stop(30 * time.Second)
}

// startDemo runs demo in the background until it says it is ready, and
// returns its output and a stop that presses Ctrl-C and waits for the demo
// to return, failing the test if it does not within the given time or
// returns an error.
func startDemo(t *testing.T, demo func(context.Context, io.Writer) error) (*syncBuffer, func(time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- demo(ctx, out)
		close(finished)
	}()
	// Even when the test fails early, the demo stops and cleans up first.
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(time.Minute):
		}
	})
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C to stop.") {
		select {
		case err := <-done:
			t.Fatalf("demo exited early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("demo not ready after 3 minutes:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return out, func(within time.Duration) {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("demo returned %v after Ctrl-C", err)
			}
		case <-time.After(within):
			t.Fatalf("demo did not stop within %v of Ctrl-C", within)
		}
	}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, b)
	}
	return string(b)
}

// TestDemoStartsAThrowawayPostgreSQL runs the demo on a machine where
// nothing answers at the default URL and MICROAPPS_DATABASE_URL is unset but
// PostgreSQL's binaries are installed: the demo starts its own cluster, comes
// up, and leaves neither the cluster's directory nor its server behind.
func TestDemoStartsAThrowawayPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster: skipped under -short")
	}
	t.Parallel()
	if _, err := pgcluster.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("%v: install PostgreSQL's server package to run this test", err)
	}
	closed := freeAddr(t) // listened on, then closed: nothing answers there
	defaultURL := "postgres://postgres@" + closed + "/microapps?sslmode=disable"
	addr := freeAddr(t)
	out, stop := startDemo(t, func(ctx context.Context, out io.Writer) error {
		return runDemoWith(ctx, nil, envOf(map[string]string{"MICROAPPS_HTTP_ADDR": addr}), out, defaultURL)
	})
	printed := out.String()
	m := regexp.MustCompile(`database (postgres://\S+) ready \(.*\): throwaway PostgreSQL \S+ in (\S+?)[ ,]`).FindStringSubmatch(printed)
	if m == nil || !strings.Contains(printed, "no usable PostgreSQL at the default URL") {
		t.Fatalf("the demo does not say it runs a throwaway PostgreSQL:\n%s", printed)
	}
	dbURL, dir := m[1], m[2]
	if strings.Contains(dbURL, closed) || !strings.HasPrefix(filepath.Base(dir), "microapps-pg-") {
		t.Fatalf("database %s in %s", dbURL, dir)
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil || !pgcluster.ProcessRunning(pid) {
		t.Fatalf("postmaster pid %q: %v", pidFile, err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}

	stop(60 * time.Second)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the throwaway cluster's directory %s is still there (%v)", dir, err)
	}
	if pgcluster.ProcessRunning(pid) {
		t.Errorf("the throwaway PostgreSQL (pid %d) still runs", pid)
	}
	if !strings.Contains(out.String(), "throwaway PostgreSQL stopped and "+dir+" removed") {
		t.Errorf("the demo did not say it removed the cluster:\n%s", out.String())
	}
}

// TestDemoWithoutPostgreSQLSaysHowToInstallIt: no server answers and no
// binaries are installed. Not parallel: it empties PATH and the search list.
func TestDemoWithoutPostgreSQLSaysHowToInstallIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	globs := pgcluster.SearchGlobs
	pgcluster.SearchGlobs = nil
	defer func() { pgcluster.SearchGlobs = globs }()
	var out syncBuffer
	say := func(format string, a ...any) { fmt.Fprintf(&out, format+"\n", a...) }
	_, err := openDemoDatabase(context.Background(), "postgres://postgres:pw@"+freeAddr(t)+"/microapps?sslmode=disable", false, say)
	if err == nil {
		t.Fatal("no error without server and binaries")
	}
	for _, want := range []string{"no usable PostgreSQL at postgres://postgres:xxxxx@127.0.0.1:", "no PostgreSQL server binaries",
		"Debian/Ubuntu: sudo apt-get install postgresql", "macOS:         brew install postgresql@",
		"MICROAPPS_DATABASE_URL=postgres://user:password@host:5432/microapps microapps demo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error()+out.String(), ":pw@") {
		t.Errorf("a password is shown:\n%v\n%s", err, out.String())
	}
}
