package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/web/webtest"
)

// The pages' test world is package webtest's; these names keep the tests short.
var testNow = webtest.Now

const (
	intA = webtest.IntA
	intB = webtest.IntB
	intC = webtest.IntC
)

var testProxy = webtest.Proxy

// fixture is webtest's world, with the servers the tests build on it.
type fixture struct {
	store *store.Store
}

func newFixture(t testing.TB) *fixture { return &fixture{store: webtest.New(t).Store} }

func exec(t testing.TB, s *store.Store, sql string, args ...any) { webtest.Exec(t, s, sql, args...) }

var (
	get   = webtest.Get
	parse = webtest.Parse
	texts = webtest.Texts
	attrs = webtest.Attrs
)

// headerServer builds a header-mode Server on the fixture with the test clock.
func (f *fixture) headerServer(t testing.TB) *Server {
	t.Helper()
	srv, err := New(Options{Store: f.store, AuthMode: AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// oidcApp serves the pages in oidc mode against a mockoidc provider, over
// HTTP on loopback; mod adjusts the options (the console, the group, the clock).
func oidcApp(t testing.TB, st *store.Store, mod func(*Options)) (idp *mockoidc.MockOIDC, app *httptest.Server, public *url.URL) {
	t.Helper()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	cfg := idp.Config()
	var h http.Handler
	app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(app.Close)
	public, _ = url.Parse(app.URL)
	opts := Options{Store: st, AuthMode: AuthOIDC, OIDCIssuer: cfg.Issuer, OIDCClientID: cfg.ClientID,
		OIDCClientSecret: cfg.ClientSecret, PublicURL: public, Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Console {
		// The console's pages are package console's: a stub stands for
		// them here, behind the same access rule.
		srv.AddRoutes(func(r chi.Router) {
			r.Get("/console", srv.ConsolePage(func(w http.ResponseWriter, _ *http.Request, _ *Request) error {
				_, err := io.WriteString(w, "console")
				return err
			}))
		})
	}
	h = srv.Handler()
	return idp, app, public
}
