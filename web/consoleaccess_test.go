package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// In oidc mode the groups claim grants the console when it holds
// MICROAPPS_PLATFORM_ADMIN_GROUP; other groups get the 404 like anyone else.
func TestConsoleGroupClaimGrantsTheConsole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	idp, app, _ := oidcApp(t, f.store, func(o *Options) {
		o.OIDCScopes, o.PlatformAdminGroup = []string{"openid", "email", "groups"}, "microapps-admins"
		o.Console = true
	})
	for _, tc := range []struct {
		groups []string
		want   int
	}{{[]string{"engineering", "microapps-admins"}, http.StatusOK}, {[]string{"engineering"}, http.StatusNotFound}, {nil, http.StatusNotFound}} {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		idp.QueueUser(&mockoidc.MockUser{Subject: "u-" + strings.Join(tc.groups, "-"), Email: "ops@example.com", EmailVerified: true, Groups: tc.groups})
		resp, err := c.Get(app.URL + "/console")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Request.URL.Path != "/console" || resp.StatusCode != tc.want {
			t.Errorf("groups %v: %d at %s, want %d", tc.groups, resp.StatusCode, resp.Request.URL.Path, tc.want)
		}
	}
}

// Issue 31, item 1: the console right read from the groups claim belongs to
// one sign-in. A later sign-in in the same browser (another user, or the same
// one out of the group) writes it afresh, true or false, and a grant older
// than consoleGroupRecheck sends the user through the provider again.
func TestConsoleGroupRightLastsOneSignInAndIsRechecked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var clock atomic.Int64
	clock.Store(testNow.Unix())
	idp, app, _ := oidcApp(t, f.store, func(o *Options) {
		o.OIDCScopes, o.PlatformAdminGroup = []string{"openid", "email", "groups"}, "microapps-admins"
		o.Console = true
		o.Now = func() time.Time { return time.Unix(clock.Load(), 0) }
	})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	console := func(t *testing.T) *http.Response {
		t.Helper()
		resp, err := browser.Get(app.URL + "/console")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	signIn := func(t *testing.T, email string, groups ...string) {
		t.Helper()
		idp.QueueUser(&mockoidc.MockUser{Subject: email, Email: email, EmailVerified: true, Groups: groups})
		resp, err := browser.Get(app.URL + "/signin?next=%2F")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/" {
			t.Fatalf("sign-in of %s: %d at %s", email, resp.StatusCode, resp.Request.URL)
		}
	}

	signIn(t, "ops@example.com", "microapps-admins")
	if resp := console(t); resp.StatusCode != 200 {
		t.Fatalf("ops in the group: /console %d", resp.StatusCode)
	}
	signIn(t, "eve@example.com", "engineering")
	if resp := console(t); resp.StatusCode != http.StatusNotFound {
		t.Errorf("eve, signed in after ops in the same browser: /console %d, want 404", resp.StatusCode)
	}
	signIn(t, "ops@example.com", "microapps-admins")
	signIn(t, "ops@example.com", "engineering")
	if resp := console(t); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ops, removed from the group and signed in again: /console %d, want 404", resp.StatusCode)
	}

	// A grant older than the re-check interval goes back to the provider,
	// which no longer lists the group: the console is gone.
	signIn(t, "ops@example.com", "microapps-admins")
	clock.Add(int64((consoleGroupRecheck - time.Second) / time.Second))
	if resp := console(t); resp.StatusCode != 200 {
		t.Fatalf("ops within the re-check interval: /console %d", resp.StatusCode)
	}
	clock.Add(2)
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := console(t)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?next=%2Fconsole") {
		t.Fatalf("ops after the re-check interval: /console %d %q, want a new sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	browser.CheckRedirect = nil
	idp.QueueUser(&mockoidc.MockUser{Subject: "ops", Email: "ops@example.com", EmailVerified: true, Groups: []string{"engineering"}})
	if resp := console(t); resp.StatusCode != http.StatusNotFound || resp.Request.URL.Path != "/console" {
		t.Errorf("ops re-checked out of the group: /console %d at %s, want 404", resp.StatusCode, resp.Request.URL.Path)
	}
	signIn(t, "ops@example.com", "microapps-admins")
	if resp := console(t); resp.StatusCode != 200 {
		t.Errorf("ops re-checked in the group: /console %d", resp.StatusCode)
	}
}
