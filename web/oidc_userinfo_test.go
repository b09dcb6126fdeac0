package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// userinfoUsers are the accounts of the zitadel provider below.
type userinfoUsers map[string]*storage.User

func (u userinfoUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u userinfoUsers) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u userinfoUsers) ExampleClientID() string { return "service" }

// TestOIDCSignInWithUserInfoOnlyProvider signs in against zitadel's OpenID
// provider (github.com/zitadel/oidc/v3, its example server unchanged), which
// like many providers puts the email scope's claims in UserInfo only, never
// in the ID token, whenever it issues an access token.
func TestOIDCSignInWithUserInfoOnlyProvider(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	// The provider, served by its own httptest server; forgeSub makes its
	// UserInfo answer for another subject.
	var forgeSub atomic.Bool
	var userinfoCalls atomic.Int32
	var idpHandler http.Handler
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/userinfo" {
			userinfoCalls.Add(1)
		}
		if forgeSub.Load() && r.URL.Path == "/userinfo" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"sub": "someone-else", "email": "alice@example.com", "email_verified": true})
			return
		}
		idpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(idp.Close)

	var appHandler http.Handler
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { appHandler.ServeHTTP(w, r) }))
	t.Cleanup(app.Close)
	public, _ := url.Parse(app.URL)

	users := userinfoUsers{
		"u-alice":   {ID: "u-alice", Username: "alice", Password: "pw-alice", Email: "Alice@Example.com", EmailVerified: true},
		"u-mallory": {ID: "u-mallory", Username: "mallory", Password: "pw-mallory", Email: "mallory@example.com", EmailVerified: false},
		"u-ghost":   {ID: "u-ghost", Username: "ghost", Password: "pw-ghost", Email: ""},
	}
	const clientID, clientSecret = "microapps-web", "microapps-secret"
	st := storage.NewStorageWithClients(users, map[string]*storage.Client{
		clientID: storage.WebClient(clientID, clientSecret, app.URL+"/auth/callback"),
	})
	idpHandler = exampleop.SetupServer(idp.URL, st, nil, false)

	logCore, logs := observer.New(zap.InfoLevel)
	srv, err := New(Options{Store: f.store, AuthMode: AuthOIDC, OIDCIssuer: idp.URL, OIDCClientID: clientID,
		OIDCClientSecret: clientSecret, PublicURL: public, Log: zap.New(logCore), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	appHandler = srv.Handler()

	// signIn goes through the code flow as a browser does, typing username
	// and password into the provider's login form, and returns the last page.
	signIn := func(t *testing.T, username, password string) (*http.Response, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, err := c.Get(app.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		login := resp.Request.URL
		id := login.Query().Get("authRequestID")
		if login.Host != strings.TrimPrefix(idp.URL, "http://") || login.Path != "/login/username" || id == "" {
			t.Fatalf("not at the provider's login form: %d %s", resp.StatusCode, login)
		}
		resp, err = c.PostForm(idp.URL+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	lastReason := func() string {
		entries := logs.FilterMessage("oidc sign-in refused").TakeAll()
		if len(entries) == 0 {
			return ""
		}
		return entries[len(entries)-1].ContextMap()["reason"].(string)
	}

	t.Run("a verified user whose email is at UserInfo only signs in and lands on My active surveys", func(t *testing.T) {
		resp, page := signIn(t, "alice", "pw-alice")
		if resp.StatusCode != 200 || resp.Request.URL.String() != app.URL+"/" ||
			!strings.Contains(page, "My active surveys") || !strings.Contains(page, "alice@example.com") {
			t.Fatalf("after sign-in: %d %s (refused: %q)\n%.2000s", resp.StatusCode, resp.Request.URL, lastReason(), page)
		}
		// The premise: this provider's ID token has no email, so the
		// sign-in asked UserInfo.
		if n := userinfoCalls.Load(); n != 1 {
			t.Fatalf("UserInfo called %d times, want 1", n)
		}
	})

	t.Run("an unverified email at UserInfo is refused as unverified", func(t *testing.T) {
		resp, page := signIn(t, "mallory", "pw-mallory")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Sign-in failed") ||
			!strings.Contains(page, "has not verified your email address") {
			t.Fatalf("unverified: %d %s\n%.2000s", resp.StatusCode, resp.Request.URL, page)
		}
		if r := lastReason(); r != "email not verified" {
			t.Fatalf("logged reason %q", r)
		}
	})

	t.Run("a user without any email is refused as missing an email", func(t *testing.T) {
		resp, page := signIn(t, "ghost", "pw-ghost")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "did not share an email address") {
			t.Fatalf("no email: %d %s\n%.2000s", resp.StatusCode, resp.Request.URL, page)
		}
		if r := lastReason(); r != "email missing" {
			t.Fatalf("logged reason %q", r)
		}
	})

	t.Run("UserInfo about another subject is not believed", func(t *testing.T) {
		forgeSub.Store(true)
		defer forgeSub.Store(false)
		resp, page := signIn(t, "mallory", "pw-mallory")
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(page, "alice@example.com") {
			t.Fatalf("forged UserInfo: %d %s", resp.StatusCode, resp.Request.URL)
		}
		if r := lastReason(); r != "userinfo subject mismatch" {
			t.Fatalf("logged reason %q", r)
		}
	})
}
