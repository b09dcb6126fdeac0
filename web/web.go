// Package web serves the pages people use every day (My active surveys,
// Survey details, the Brand Admin views and the notification feed) and the
// caller's own JSON under /api/v1/me. Pages read only PostgreSQL through the
// store; every action that changes Qualtrics is a deep link.
package web

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/web/signin"
)

// Store is what the pages read. *store.Store satisfies it.
type Store interface {
	MyActiveSurveys(ctx context.Context, email string, now time.Time) ([]store.MySurvey, error)
	MyActiveSurveysAndSummary(ctx context.Context, email string, now time.Time) ([]store.MySurvey, store.UserSummary, error)
	MySurveyDetail(ctx context.Context, email, integrationID, distributionID string, now time.Time) (store.MySurveyDetail, error)
	OpenSurveys(ctx context.Context, q store.OpenSurveysQuery, now time.Time) (store.OpenSurveysPage, error)
	SurveyResults(ctx context.Context, q store.SurveyResultsQuery, now time.Time) (store.SurveyResultsPage, error)
	DistributionData(ctx context.Context, email, integrationID, distributionID string, now time.Time) (store.DistributionData, error)
	Feed(ctx context.Context, email string, now time.Time, limit int) (store.FeedPage, error)
	FeedPage(ctx context.Context, email string, now time.Time, limit int) (store.FeedPage, error)
	UserSummary(ctx context.Context, email string, now time.Time) (store.UserSummary, error)
	MarkRead(ctx context.Context, email string, id int64, now time.Time) (int64, error)
}

// Auth modes.
const (
	AuthOIDC   = "oidc"
	AuthHeader = "header"
	AuthDev    = "dev"
)

// Options configure a Server.
type Options struct {
	Store Store
	// ReadStore, when set, is a read replica of Store (a streaming standby,
	// MICROAPPS_DATABASE_READ_URL): the pages and /api/v1/me read from it
	// when Reads allows, and fall back to Store. Writes, sessions and the
	// console always use Store. Reads is required with it.
	ReadStore Store
	Reads     ReadRouter
	// Sessions stores sign-in sessions (oidc and dev modes). When nil and
	// Store has a Pool() method (as *store.Store does), sessions live in the
	// PostgreSQL sessions table so any replica can serve any user; otherwise
	// in memory.
	Sessions scs.Store
	Log      *zap.Logger

	AuthMode       string         // "oidc", "header" or "dev"
	AuthHeader     string         // header mode: the header holding the email (default X-Forwarded-Email)
	TrustedProxies []netip.Prefix // header mode: only these peers may set it

	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	// OIDCScopes are asked of the provider; empty means signin.DefaultScopes.
	OIDCScopes []string
	// PublicURL is the external URL of the service: the OIDC redirect URL is
	// derived from it, and an https URL makes cookies Secure.
	PublicURL *url.URL

	// AllowDevAuth must be true for AuthMode "dev": anyone can act as anyone,
	// so only `microapps demo` sets it.
	AllowDevAuth bool
	DevUsers     []string // the demo users offered on the dev sign-in page

	Now func() time.Time // default time.Now

	// Console says the platform admin console is mounted (package console,
	// through AddRoutes): platform admins get its link and its pages.
	Console bool
	// PlatformAdmins may use the console (MICROAPPS_PLATFORM_ADMINS).
	PlatformAdmins []string
	// PlatformAdminGroup, in oidc mode, also grants the console to users whose
	// ID token's groups claim holds it (MICROAPPS_PLATFORM_ADMIN_GROUP).
	PlatformAdminGroup string
	// JobsUI, when set, is River's job UI, served to platform admins under
	// /console/jobs/ (it must be built with that prefix).
	JobsUI http.Handler
}

// Server serves the pages and the user API.
type Server struct {
	opts     Options
	log      *zap.Logger
	now      func() time.Time
	sessions *scs.SessionManager // nil in header mode
	oidc     *signin.OIDC        // nil unless oidc mode
	static   *staticFiles
	zones    zones
	locales  locales
	devUsers map[string]bool
	// platformAdmins are the normalised emails of MICROAPPS_PLATFORM_ADMINS.
	platformAdmins map[string]bool

	handlerOnce sync.Once
	routes      []func(chi.Router) // AddRoutes
	handler     http.Handler
}

// New checks opts and builds a Server. It makes no network call: the OIDC
// provider is discovered on the first sign-in, so a slow identity provider
// never stops the pages from starting.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("web: Options.Store is required")
	}
	if (opts.ReadStore == nil) != (opts.Reads == nil) {
		return nil, errors.New("web: Options.ReadStore and Options.Reads go together")
	}
	s := &Server{opts: opts, log: opts.Log, now: opts.Now, devUsers: map[string]bool{}, platformAdmins: map[string]bool{}}
	for _, e := range opts.PlatformAdmins {
		if n := normalizeEmail(e); validEmail(n) {
			s.platformAdmins[n] = true
		}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.static, err = newStaticFiles(); err != nil {
		return nil, err
	}
	switch opts.AuthMode {
	case AuthHeader:
		if s.opts.AuthHeader == "" {
			s.opts.AuthHeader = "X-Forwarded-Email"
		}
		if len(opts.TrustedProxies) == 0 {
			return nil, errors.New("web: header auth needs at least one trusted proxy prefix")
		}
	case AuthDev:
		if !opts.AllowDevAuth {
			return nil, errors.New("web: dev sign-in is only allowed under `microapps demo`")
		}
		for _, e := range opts.DevUsers {
			if n := normalizeEmail(e); validEmail(n) {
				s.devUsers[n] = true
			}
		}
		if len(s.devUsers) == 0 {
			return nil, errors.New("web: dev sign-in needs at least one demo user")
		}
		s.sessions = s.newSessions()
	case AuthOIDC:
		if opts.OIDCIssuer == "" || opts.OIDCClientID == "" || opts.OIDCClientSecret == "" {
			return nil, errors.New("web: oidc auth needs an issuer, a client id and a client secret")
		}
		if err := signin.CheckIssuer(opts.OIDCIssuer); err != nil {
			return nil, fmt.Errorf("web: oidc issuer %s", err)
		}
		if opts.PublicURL == nil || opts.PublicURL.Host == "" {
			return nil, errors.New("web: oidc auth needs the public URL for its redirect URL")
		}
		s.sessions = s.newSessions()
		s.oidc = signin.New(signin.Config{Issuer: opts.OIDCIssuer, ClientID: opts.OIDCClientID,
			ClientSecret: opts.OIDCClientSecret, Scopes: opts.OIDCScopes, PublicURL: opts.PublicURL})
	default:
		return nil, fmt.Errorf("web: unknown auth mode %q (want oidc, header or dev)", opts.AuthMode)
	}
	return s, nil
}

func (s *Server) newSessions() *scs.SessionManager {
	sm := scs.New()
	switch {
	case s.opts.Sessions != nil:
		sm.Store = s.opts.Sessions
	default:
		if p, ok := s.opts.Store.(interface{ Pool() *pgxpool.Pool }); ok {
			// The store's purge job deletes expired sessions; no cleanup goroutine here.
			sm.Store = pgxstore.NewWithCleanupInterval(p.Pool(), 0)
		} else {
			sm.Store = memstore.NewWithCleanupInterval(0)
		}
	}
	sm.Lifetime = 12 * time.Hour
	sm.IdleTimeout = 4 * time.Hour
	sm.Cookie.Name = s.cookieName("microapps_session")
	sm.Cookie.Path = "/"
	sm.Cookie.Domain = ""
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode // the IdP's redirect back is a top-level GET
	sm.Cookie.Secure = s.https()
	sm.Cookie.Persist = false
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.serverError(w, r, fmt.Errorf("session: %w", err))
	}
	return sm
}

// https says the service is reached over https (MICROAPPS_PUBLIC_URL).
func (s *Server) https() bool { return s.opts.PublicURL != nil && s.opts.PublicURL.Scheme == "https" }

// cookieName is name with the "__Host-" prefix over https: browsers then
// accept the cookie only if it is Secure, for "/" and without a Domain, so a
// sibling subdomain or a plain-http page cannot plant or overwrite it.
func (s *Server) cookieName(name string) string {
	if s.https() {
		return "__Host-" + name
	}
	return name
}

// AddRoutes adds an audience's pages (the console's) to the handler, inside
// its sessions, sign-in, limits and headers. Call it before Handler.
func (s *Server) AddRoutes(add func(chi.Router)) { s.routes = append(s.routes, add) }

// Handler serves every page, the sign-in routes and the static assets. It
// does not serve /livez, /readyz or /metrics.
func (s *Server) Handler() http.Handler {
	s.handlerOnce.Do(func() { s.handler = s.buildHandler() })
	return s.handler
}

func (s *Server) buildHandler() http.Handler {
	mux := chi.NewRouter()
	// A GET route answers HEAD too, as it did on the standard library's mux.
	mux.Use(middleware.GetHead)
	mux.Get("/static/{file}", s.static.ServeHTTP)
	mux.Get("/", s.PageWith(s.myActiveSurveys, false))
	mux.Get("/surveys/{integrationId}/{distributionId}", s.PageWith(s.surveyDetails, false))
	mux.Get("/admin/surveys", s.PageWith(s.openSurveys, false))
	mux.Get("/admin/surveys/{integrationId}/{surveyId}", s.PageWith(s.surveyResults, false))
	mux.Get("/admin/distributions/{integrationId}/{distributionId}", s.PageWith(s.distributionData, false))
	mux.Get("/notifications", s.PageWith(s.notifications, false))
	mux.Post("/notifications/read", s.Page(s.markRead))
	mux.Post("/lang", s.setLang)
	mux.Get("/settings/notifications", s.Page(s.emailSettings))
	mux.Post("/settings/notifications", s.Page(s.saveEmailSettings))
	mux.Get("/unsubscribe/{token}", s.unsubscribe)
	mux.Post("/unsubscribe/{token}", s.unsubscribe)
	mux.Get("/signin", s.signIn)
	mux.Post("/signin/dev", s.devSignIn)
	mux.Get("/auth/callback", s.oidcCallback)
	mux.Post("/signout", s.signOut)
	s.jobsRoutes(mux)
	for _, add := range s.routes {
		add(mux)
	}
	// A path no route has, or a route asked with another method, is the
	// not-found page (the console's own under /console/).
	notFound := func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console/") {
			s.ConsolePage(func(http.ResponseWriter, *http.Request, *Request) error { return ErrNotFound })(w, r)
			return
		}
		s.NotFound(w, r)
	}
	mux.NotFound(notFound)
	mux.MethodNotAllowed(notFound)

	var h http.Handler = mux
	if s.sessions != nil {
		h = s.sessions.LoadAndSave(h)
	}
	// Outside the sessions: the session is saved before the headers go out,
	// and the write position is read after it.
	h = s.markWrites(h)
	// Inside limitForms, which has parsed the form by then.
	h = s.refuseBadBytes(h)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(s.forbidden))
	// One-click unsubscribe (RFC 8058) is POSTed by mail providers from
	// anywhere; its token is the credential and it only turns email off.
	cop.AddInsecureBypassPattern("POST /unsubscribe/{token}")
	h = cop.Handler(limitForms(h))
	return securityHeaders(h, s.https())
}

// jobsPath is where River's job UI is mounted (Options.JobsUI).
const jobsPath = "/console/jobs/"

const jobsCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// maxFormBody bounds the body of the pages' forms: a language, a
// notification id, a sign-in email and a next path fit many times over.
const maxFormBody = 16 << 10

// limitForms reads the body of every request that may carry one as a small
// url-encoded form, before the handler: larger bodies get 413, multipart and
// other media types 415, an unreadable form 400. The handlers' PostFormValue
// would otherwise read a 5 MB multipart body and carry on as if it were empty.
func limitForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, jobsPath) {
			// River's job UI posts JSON to its own API; jobsGate bounds it.
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/unsubscribe/") {
			// RFC 8058 lets mail providers POST the one-click body as
			// multipart/form-data; the handler reads no body, so only its
			// size is bounded.
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxFormBody {
			http.Error(w, "Request body too large.", http.StatusRequestEntityTooLarge)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
				http.Error(w, "Forms are accepted as application/x-www-form-urlencoded only.", http.StatusUnsupportedMediaType)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "Request body too large.", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "The form could not be read.", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HSTS is the Strict-Transport-Security value sent when the service is
// reached over https: a year, this host only (subdomains may be other
// services).
const HSTS = "max-age=31536000"

// securityHeaders sets a strict policy on every response: no inline script or
// style, no framing, nothing loaded from another origin.
func securityHeaders(next http.Handler, https bool) http.Handler {
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if strings.HasPrefix(r.URL.Path, jobsPath) {
			// River's UI (a React app) sets style attributes; it stays same-origin only.
			h.Set("Content-Security-Policy", jobsCSP)
		} else {
			h.Set("Content-Security-Policy", csp)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if https {
			h.Set("Strict-Transport-Security", HSTS)
		}
		next.ServeHTTP(w, r)
	})
}

// normalizeEmail matches how the sync stores emails (microapps.NormalizeEmail):
// trimmed, ASCII lower-cased; "" for an address that is not ASCII.
func normalizeEmail(e string) string {
	n, _ := microapps.NormalizeEmail(e)
	return n
}

func validEmail(e string) bool {
	if len(e) < 3 || len(e) > 320 || strings.Count(e, "@") != 1 || e[0] == '@' || e[len(e)-1] == '@' {
		return false
	}
	for _, c := range e {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == ',' {
			return false
		}
	}
	return true
}
