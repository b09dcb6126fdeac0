package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store/storetest"
)

// TestDemoServesSurveysToADemoUser runs the whole program the way a newcomer
// does: `microapps demo` on a fresh database, then a demo user signs in and
// sees surveys and notifications.
func TestDemoServesSurveysToADemoUser(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo"}, envOf(map[string]string{
			"MICROAPPS_DATABASE_URL": dbURL,
			"MICROAPPS_HTTP_ADDR":    addr,
		}), &out)
	}()
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
	printed := out.String()
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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v after Ctrl-C", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30 s of Ctrl-C")
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
