package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/microapps/microapps/web/signin"
)

func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	idp, app, public := oidcApp(t, f.store, nil)

	newClient := func(follow bool) *http.Client {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		if !follow {
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		}
		return c
	}
	body := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}

	t.Run("a visitor is sent to the provider with state, nonce and PKCE, and comes back signed in", func(t *testing.T) {
		c := newClient(false)
		resp, err := c.Get(app.URL + "/notifications")
		if err != nil {
			t.Fatal(err)
		}
		body(resp)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next=%2Fnotifications" {
			t.Fatalf("anonymous page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, err = c.Get(app.URL + "/signin?next=%2Fnotifications")
		if err != nil {
			t.Fatal(err)
		}
		body(resp)
		auth, _ := url.Parse(resp.Header.Get("Location"))
		q := auth.Query()
		if !strings.HasPrefix(auth.String(), idp.AuthorizationEndpoint()) || q.Get("state") == "" || q.Get("nonce") == "" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("redirect_uri") != app.URL+"/auth/callback" {
			t.Fatalf("authorization request %s", auth)
		}
		idp.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: " Alice@Example.com", EmailVerified: true})
		c.CheckRedirect = nil
		resp, err = c.Get(auth.String())
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/notifications" || !strings.Contains(page, "alice@example.com") ||
			!strings.Contains(page, `data-testid="notification"`) {
			t.Fatalf("after callback: %d %s", resp.StatusCode, resp.Request.URL)
		}
		var n int
		if err := f.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE expiry > now()`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("no session row in PostgreSQL (%d, %v)", n, err)
		}
		// Signing out ends the session.
		req, _ := http.NewRequest("POST", app.URL+"/signout", nil)
		req.Header.Set("Origin", app.URL)
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body(resp)
		if resp.StatusCode != 200 {
			t.Fatalf("sign out: %d", resp.StatusCode)
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ = c.Get(app.URL + "/")
		body(resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("still signed in after sign-out: %d", resp.StatusCode)
		}
	})

	t.Run("an unverified email is refused", func(t *testing.T) {
		c := newClient(true)
		idp.QueueUser(&mockoidc.MockUser{Subject: "u2", Email: "mallory@example.com", EmailVerified: false})
		resp, err := c.Get(app.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Sign-in failed") {
			t.Fatalf("unverified: %d %s", resp.StatusCode, resp.Request.URL)
		}
	})

	t.Run("a callback with a forged state is refused", func(t *testing.T) {
		c := newClient(false)
		resp, err := c.Get(app.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		body(resp)
		resp, err = c.Get(app.URL + "/auth/callback?code=whatever&state=forged")
		if err != nil {
			t.Fatal(err)
		}
		body(resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged state: %d", resp.StatusCode)
		}
		for _, ck := range c.Jar.Cookies(public) {
			if ck.Name == "microapps_session" {
				resp, _ := c.Get(app.URL + "/")
				body(resp)
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("forged callback signed the user in: %d", resp.StatusCode)
				}
			}
		}
	})
}

// Issue 31, item 5: anonymous GET /signin kept one session row each for
// hours. The sign-in flow now travels in a sealed cookie of ten minutes; a
// session row is written by a successful callback only, and a flow cookie
// that was altered or is too old is refused.
func TestAnonymousSignInsWriteNoSessionRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var clock atomic.Int64
	clock.Store(testNow.Unix())
	idp, app, public := oidcApp(t, f.store, func(o *Options) { o.Now = func() time.Time { return time.Unix(clock.Load(), 0) } })
	sessionRows := func() int {
		var n int
		if err := f.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for i := range 50 {
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noFollow}
		resp, err := c.Get(app.URL + "/signin?next=%2Fnotifications")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("GET /signin %d: %d", i, resp.StatusCode)
		}
		// A callback with a wrong state writes nothing either.
		req, _ := http.NewRequest("GET", app.URL+"/auth/callback?code=x&state=forged", nil)
		for _, ck := range resp.Cookies() {
			req.AddCookie(ck)
		}
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged callback %d: %d", i, resp.StatusCode)
		}
	}
	if n := sessionRows(); n != 0 {
		t.Errorf("50 anonymous sign-ins and forged callbacks left %d session rows, want 0", n)
	}

	// start begins a sign-in in a fresh browser and returns it with the
	// provider's authorization URL.
	start := func(t *testing.T) (*http.Client, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: noFollow}
		resp, err := c.Get(app.URL + "/signin?next=%2Fnotifications")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c, resp.Header.Get("Location")
	}
	finish := func(t *testing.T, c *http.Client, auth string) *http.Response {
		t.Helper()
		idp.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "alice@example.com", EmailVerified: true})
		c.CheckRedirect = nil
		resp, err := c.Get(auth)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("an intact flow signs in and then holds one session row", func(t *testing.T) {
		c, auth := start(t)
		if resp := finish(t, c, auth); resp.StatusCode != 200 || resp.Request.URL.Path != "/notifications" {
			t.Fatalf("sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		if n := sessionRows(); n != 1 {
			t.Errorf("%d session rows after one sign-in", n)
		}
	})
	t.Run("an altered flow cookie is refused", func(t *testing.T) {
		c, auth := start(t)
		cks := c.Jar.Cookies(public)
		for _, ck := range cks {
			if ck.Name == signin.FlowCookie {
				b := []byte(ck.Value)
				b[len(b)/2] ^= 1
				if b[len(b)/2] == '-' || b[len(b)/2] == '_' || b[len(b)/2] > 'z' {
					b[len(b)/2] = 'A'
				}
				ck.Value = string(b)
				c.Jar.SetCookies(public, []*http.Cookie{ck})
			}
		}
		if resp := finish(t, c, auth); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("altered flow cookie: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("a flow older than ten minutes is refused", func(t *testing.T) {
		c, auth := start(t)
		clock.Add(int64(signin.FlowLifetime/time.Second) + 1)
		defer clock.Add(-int64(signin.FlowLifetime/time.Second) - 1)
		if resp := finish(t, c, auth); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("expired flow: %d, want 401", resp.StatusCode)
		}
	})
}
