package web

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Session keys.
const sessEmail = "email"

// oidcFlowCookie carries a sign-in's state, nonce, PKCE verifier and next
// path from GET /signin to the callback, sealed (oidcAuth.sealFlow), for
// oidcFlowLifetime at most.
const (
	oidcFlowCookie   = "microapps_oidc"
	oidcFlowLifetime = 10 * time.Minute
)

// errUnauthenticated means the request carries no user we can trust.
var errUnauthenticated = errors.New("web: not signed in")

// userEmail returns the signed-in user's normalised email.
func (s *Server) userEmail(r *http.Request) (string, error) {
	switch s.opts.AuthMode {
	case AuthHeader:
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return "", errUnauthenticated
		}
		addr := ap.Addr().Unmap()
		trusted := false
		for _, p := range s.opts.TrustedProxies {
			if p.Contains(addr) {
				trusted = true
				break
			}
		}
		if !trusted {
			return "", errUnauthenticated
		}
		// Exactly one value: a proxy that appends to the client's header
		// instead of replacing it would otherwise let the client choose
		// (the first value) or at least confuse which one counts.
		vals := r.Header.Values(s.opts.AuthHeader)
		if len(vals) != 1 {
			return "", errUnauthenticated
		}
		e := normalizeEmail(vals[0])
		if !validEmail(e) {
			return "", errUnauthenticated
		}
		return e, nil
	default:
		if s.sessions == nil {
			return "", errUnauthenticated
		}
		e := s.sessions.GetString(r.Context(), sessEmail)
		if e == "" {
			return "", errUnauthenticated
		}
		return e, nil
	}
}

// unauthenticated answers a request without a user: header mode has no
// sign-in of its own, so it is a 401 page; otherwise GETs go to sign-in.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if s.opts.AuthMode != AuthHeader && r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(localPath(r.URL.RequestURI())), http.StatusSeeOther)
		return
	}
	s.renderStatus(w, r, http.StatusUnauthorized, messagePage(s.layout(rc, rc.lang.T("unauth.title")), rc.lang.T("unauth.body"), ""))
}

// signIn starts a sign-in: the list of demo users in dev mode, the identity
// provider in oidc mode.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	rc := s.newReqCtx(r)
	next := localPath(r.URL.Query().Get("next"))
	switch s.opts.AuthMode {
	case AuthDev:
		users := make([]string, 0, len(s.opts.DevUsers))
		for _, u := range s.opts.DevUsers {
			if n := normalizeEmail(u); s.devUsers[n] {
				users = append(users, n)
			}
		}
		s.render(w, r, devSignInPage(s.layout(rc, rc.lang.T("signin.title")), users, next))
	case AuthOIDC:
		s.oidcStart(w, r, next)
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (s *Server) devSignIn(w http.ResponseWriter, r *http.Request) {
	if s.opts.AuthMode != AuthDev {
		s.notFoundHandler(w, r)
		return
	}
	email := normalizeEmail(r.PostFormValue("email"))
	if !s.devUsers[email] {
		s.notFoundHandler(w, r)
		return
	}
	if err := s.startSession(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), sessEmail, email)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// startSession begins the session of a sign-in: nothing of the one before
// survives it (another user's console right, in the same browser), and it
// gets a new token so a token planted before the sign-in is worth nothing.
func (s *Server) startSession(ctx context.Context) error {
	if err := s.sessions.Clear(ctx); err != nil {
		return err
	}
	return s.sessions.RenewToken(ctx)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if s.sessions == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := s.sessions.Destroy(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	rc := s.newReqCtx(r)
	s.render(w, r, messagePage(s.layout(rc, rc.lang.T("signedout.title")), "", "/signin"))
}

// oidcAuth is the OpenID Connect client, discovered lazily and then kept.
type oidcAuth struct {
	opts        Options
	mu          sync.Mutex
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	config      oauth2.Config
	lastAttempt time.Time
	// flow seals the sign-in flow cookie (oidcflow.go).
	flow cipher.AEAD
}

func newOIDCAuth(opts Options) *oidcAuth {
	return &oidcAuth{opts: opts, flow: newFlowAEAD(opts.OIDCClientSecret)}
}

func (o *oidcAuth) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return &o.config, o.verifier, nil
	}
	if time.Since(o.lastAttempt) < 2*time.Second {
		return nil, nil, errors.New("oidc: discovery failed moments ago")
	}
	o.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.opts.OIDCIssuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc: discover %s: %w", o.opts.OIDCIssuer, err)
	}
	redirect := *o.opts.PublicURL
	redirect.Path = "/auth/callback"
	redirect.RawQuery, redirect.Fragment = "", ""
	o.provider = p
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.opts.OIDCClientID})
	o.config = oauth2.Config{
		ClientID:     o.opts.OIDCClientID,
		ClientSecret: o.opts.OIDCClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirect.String(),
		Scopes:       o.scopes(),
	}
	return &o.config, o.verifier, nil
}

// DefaultOIDCScopes are asked of the provider when Options.OIDCScopes is empty.
var DefaultOIDCScopes = []string{oidc.ScopeOpenID, "email", "profile"}

func (o *oidcAuth) scopes() []string {
	if len(o.opts.OIDCScopes) > 0 {
		return o.opts.OIDCScopes
	}
	return DefaultOIDCScopes
}

// userClaims are what sign-in reads about the user: from the ID token, and
// from the provider's UserInfo endpoint when the ID token has no email.
// Read further claims by adding fields here; both sources fill them.
type userClaims struct {
	Subject       string    `json:"sub"`
	Email         string    `json:"email"`
	EmailVerified claimBool `json:"email_verified"`
	// Groups is a list of names or one name; it may grant the console
	// (MICROAPPS_PLATFORM_ADMIN_GROUP).
	Groups json.RawMessage `json:"groups"`
}

// signInRefusal is why a sign-in is refused: reason and err go to the log,
// page is the message key shown to the user (empty: the generic one). Pages
// tell a missing email from an unverified one and say nothing more.
type signInRefusal struct {
	reason string
	page   string
	err    error
}

// userClaims reads the user's claims from the verified ID token. OpenID
// Connect Core §5.4 lets a provider that issues an access token return the
// email scope's claims from UserInfo only, so when the ID token has no email
// they are read from there, once UserInfo's subject is known to be the ID
// token's: a claim UserInfo returns replaces the ID token's.
func (o *oidcAuth) userClaims(ctx context.Context, tok *oauth2.Token, idt *oidc.IDToken) (userClaims, *signInRefusal) {
	var c userClaims
	if err := idt.Claims(&c); err != nil {
		return c, &signInRefusal{reason: "id_token claims", err: err}
	}
	if c.Email != "" {
		return c, nil
	}
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	if p.UserInfoEndpoint() == "" {
		return c, nil // nothing more to ask: the caller refuses for the missing email
	}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return c, &signInRefusal{reason: "userinfo request", err: err}
	}
	if ui.Subject == "" || subtle.ConstantTimeCompare([]byte(ui.Subject), []byte(idt.Subject)) != 1 {
		return c, &signInRefusal{reason: "userinfo subject mismatch",
			err: fmt.Errorf("UserInfo sub %q is not the ID token's %q", ui.Subject, idt.Subject)}
	}
	if err := ui.Claims(&c); err != nil {
		return c, &signInRefusal{reason: "userinfo claims", err: err}
	}
	return c, nil
}

// claimBool is a boolean claim that some providers send as the string
// "true" or "false".
type claimBool bool

func (b *claimBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("email_verified is %s, not a boolean", data)
	}
	return nil
}

// CheckIssuer says whether raw can be an OpenID provider's issuer: an
// absolute https URL, or http on a loopback host (tests, local trials), since
// anything else lets the network between us and the provider forge sign-ins.
func CheckIssuer(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be the absolute https URL of your identity provider, e.g. https://login.example.com/realms/staff")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be the issuer URL alone, without credentials, query or fragment")
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("must use https (http is allowed only on a loopback host such as 127.0.0.1 or localhost), not %s://%s", u.Scheme, u.Host)
	}
	return nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request, next string) {
	cfg, _, err := s.oidc.setup(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	f := oidcFlow{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Next: next,
		Expires: s.now().Add(oidcFlowLifetime).Unix()}
	// The flow lives in a short-lived sealed cookie, not in the session:
	// an anonymous GET /signin writes no session row.
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(oidcFlowCookie), Value: s.oidc.sealFlow(f), Path: "/",
		MaxAge: int(oidcFlowLifetime / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.https()})
	http.Redirect(w, r, cfg.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.notFoundHandler(w, r)
		return
	}
	ctx := r.Context()
	rc := s.newReqCtx(r)
	failBecause := func(f *signInRefusal) {
		s.log.Warn("oidc sign-in refused", zap.String("reason", f.reason), zap.Error(f.err),
			zap.String("requestId", w.Header().Get("X-Request-Id")))
		page := f.page
		if page == "" {
			page = "signin.failed.body"
		}
		s.renderStatus(w, r, http.StatusUnauthorized,
			messagePage(s.layout(rc, rc.lang.T("signin.failed")), rc.lang.T(page), "/signin"))
	}
	fail := func(reason string, err error) { failBecause(&signInRefusal{reason: reason, err: err}) }
	// The flow cookie serves one callback, whatever its outcome.
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(oidcFlowCookie), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.https()})
	var flow oidcFlow
	if ck, err := r.Cookie(s.cookieName(oidcFlowCookie)); err == nil {
		flow, _ = s.oidc.openFlow(ck.Value, s.now())
	}
	state, nonce, verifier, next := flow.State, flow.Nonce, flow.Verifier, localPath(flow.Next)
	q := r.URL.Query()
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(q.Get("state"))) != 1 {
		fail("state mismatch", nil)
		return
	}
	if e := q.Get("error"); e != "" {
		fail("provider error", errors.New(e))
		return
	}
	cfg, verif, err := s.oidc.setup(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	exCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(exCtx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		fail("code exchange", err)
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		fail("no id_token", nil)
		return
	}
	idt, err := verif.Verify(exCtx, raw)
	if err != nil {
		fail("id_token verification", err)
		return
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		fail("nonce mismatch", nil)
		return
	}
	claims, refused := s.oidc.userClaims(exCtx, tok, idt)
	if refused != nil {
		failBecause(refused)
		return
	}
	email := normalizeEmail(claims.Email)
	switch {
	case email == "":
		failBecause(&signInRefusal{reason: "email missing", page: "signin.failed.noemail",
			err: fmt.Errorf("neither the ID token nor UserInfo has an email claim (scopes %q)", s.oidc.scopes())})
		return
	case !validEmail(email):
		failBecause(&signInRefusal{reason: "email invalid", page: "signin.failed.noemail"})
		return
	case !bool(claims.EmailVerified):
		failBecause(&signInRefusal{reason: "email not verified", page: "signin.failed.unverified"})
		return
	}
	if err := s.startSession(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.sessions.Put(ctx, sessEmail, email)
	s.rememberConsoleGroup(ctx, claims.Groups)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
