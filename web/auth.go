package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Session keys.
const (
	sessEmail    = "email"
	sessState    = "oidc_state"
	sessNonce    = "oidc_nonce"
	sessVerifier = "oidc_verifier"
	sessNext     = "oidc_next"
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
		e := normalizeEmail(r.Header.Get(s.opts.AuthHeader))
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
	if err := s.sessions.RenewToken(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), sessEmail, email)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
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
}

func newOIDCAuth(opts Options) *oidcAuth { return &oidcAuth{opts: opts} }

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
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}
	return &o.config, o.verifier, nil
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
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	ctx := r.Context()
	s.sessions.Put(ctx, sessState, state)
	s.sessions.Put(ctx, sessNonce, nonce)
	s.sessions.Put(ctx, sessVerifier, verifier)
	s.sessions.Put(ctx, sessNext, next)
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.notFoundHandler(w, r)
		return
	}
	ctx := r.Context()
	rc := s.newReqCtx(r)
	fail := func(reason string, err error) {
		s.log.Warn("oidc sign-in refused", zap.String("reason", reason), zap.Error(err),
			zap.String("requestId", w.Header().Get("X-Request-Id")))
		s.renderStatus(w, r, http.StatusUnauthorized,
			messagePage(s.layout(rc, rc.lang.T("signin.failed")), rc.lang.T("signin.failed.body"), "/signin"))
	}
	state := s.sessions.PopString(ctx, sessState)
	nonce := s.sessions.PopString(ctx, sessNonce)
	verifier := s.sessions.PopString(ctx, sessVerifier)
	next := localPath(s.sessions.PopString(ctx, sessNext))
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
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		fail("claims", err)
		return
	}
	email := normalizeEmail(claims.Email)
	if claims.EmailVerified == nil || !*claims.EmailVerified || !validEmail(email) {
		fail("email not verified", nil)
		return
	}
	if err := s.sessions.RenewToken(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.sessions.Put(ctx, sessEmail, email)
	s.rememberConsoleGroup(ctx, idt.Claims)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
