package console

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/web"
	"github.com/microapps/microapps/web/webtest"
)

// The console's tests run on the pages' test world (package webtest).

var testNow = webtest.Now

const (
	intA = webtest.IntA
	intB = webtest.IntB
	intC = webtest.IntC
)

var testProxy = webtest.Proxy

// fixture is webtest's world, with the console the tests build on it.
type fixture struct {
	store *store.Store
}

func newFixture(t testing.TB) *fixture { return &fixture{store: webtest.New(t).Store} }

var (
	get   = webtest.Get
	parse = webtest.Parse
	texts = webtest.Texts
	attrs = webtest.Attrs
)

const platformAdmin = "pat@example.com"

// consoleServer is a header-mode server with the console on the fixture.
// It has no sync control: "Sync now" answers that it is unavailable.
func (f *fixture) consoleServer(t testing.TB) http.Handler {
	t.Helper()
	return f.consoleServerWith(t, nil)
}

// consoleServerWith is consoleServer with sync control (nil: none).
func (f *fixture) consoleServerWith(t testing.TB, syncs manage.Syncs) http.Handler {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	svc := manage.New(manage.Options{Store: f.store, Keyring: kr, Now: func() time.Time { return testNow },
		SealWebhookSecret: func(id, secret string) (string, []byte, error) { return kr.Seal([]byte(secret), []byte("webhook:"+id)) },
		Syncs:             syncs})
	srv, err := web.New(web.Options{Store: f.store, AuthMode: web.AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow },
		Console:        true,
		PlatformAdmins: []string{" PAT@example.com "}})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddRoutes(New(Options{Web: srv, Manage: svc}).Routes)
	return srv.Handler()
}

// postForm sends a same-origin form POST as user.
func postForm(t testing.TB, h http.Handler, user, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if user != "" {
		req.Header.Set("X-Forwarded-Email", user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
