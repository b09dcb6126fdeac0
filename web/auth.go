package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/microapps/microapps/web/signin"
)

// Session keys.
const sessEmail = "email"

// errUnauthenticated means the request carries no user we can trust.
var errUnauthenticated = errors.New("web: not signed in")

// userEmail returns the signed-in user's normalised email.
func (s *Server) UserEmail(r *http.Request) (string, error) {
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
func (s *Server) Unauthenticated(w http.ResponseWriter, r *http.Request, rc *Request) {
	if s.opts.AuthMode != AuthHeader && r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(localPath(r.URL.RequestURI())), http.StatusSeeOther)
		return
	}
	s.RenderStatus(w, r, http.StatusUnauthorized, messagePage(s.Layout(rc, rc.Lang.T("unauth.title")), rc.Lang.T("unauth.body"), ""))
}

// signIn starts a sign-in: the list of demo users in dev mode, the identity
// provider in oidc mode.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	rc := s.NewRequest(r)
	next := localPath(r.URL.Query().Get("next"))
	switch s.opts.AuthMode {
	case AuthDev:
		users := make([]string, 0, len(s.opts.DevUsers))
		for _, u := range s.opts.DevUsers {
			if n := normalizeEmail(u); s.devUsers[n] {
				users = append(users, n)
			}
		}
		s.Render(w, r, devSignInPage(s.Layout(rc, rc.Lang.T("signin.title")), users, next))
	case AuthOIDC:
		s.oidcStart(w, r, next)
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (s *Server) devSignIn(w http.ResponseWriter, r *http.Request) {
	if s.opts.AuthMode != AuthDev {
		s.NotFound(w, r)
		return
	}
	email := normalizeEmail(r.PostFormValue("email"))
	if !s.devUsers[email] {
		s.NotFound(w, r)
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
	rc := s.NewRequest(r)
	s.Render(w, r, messagePage(s.Layout(rc, rc.Lang.T("signedout.title")), "", "/signin"))
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request, next string) {
	cfg, _, err := s.oidc.Setup(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	f := signin.Flow{State: signin.RandomToken(), Nonce: signin.RandomToken(), Verifier: oauth2.GenerateVerifier(), Next: next,
		Expires: s.now().Add(signin.FlowLifetime).Unix()}
	// The flow lives in a short-lived sealed cookie, not in the session:
	// an anonymous GET /signin writes no session row.
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(signin.FlowCookie), Value: s.oidc.SealFlow(f), Path: "/",
		MaxAge: int(signin.FlowLifetime / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.https()})
	http.Redirect(w, r, cfg.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.NotFound(w, r)
		return
	}
	ctx := r.Context()
	rc := s.NewRequest(r)
	failBecause := func(f *signin.Refusal) {
		s.log.Warn("oidc sign-in refused", zap.String("reason", f.Reason), zap.Error(f.Err),
			zap.String("requestId", w.Header().Get("X-Request-Id")))
		page := f.Page
		if page == "" {
			page = "signin.failed.body"
		}
		s.RenderStatus(w, r, http.StatusUnauthorized,
			messagePage(s.Layout(rc, rc.Lang.T("signin.failed")), rc.Lang.T(page), "/signin"))
	}
	fail := func(reason string, err error) { failBecause(&signin.Refusal{Reason: reason, Err: err}) }
	// The flow cookie serves one callback, whatever its outcome.
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(signin.FlowCookie), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.https()})
	var flow signin.Flow
	if ck, err := r.Cookie(s.cookieName(signin.FlowCookie)); err == nil {
		flow, _ = s.oidc.OpenFlow(ck.Value, s.now())
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
	cfg, verif, err := s.oidc.Setup(ctx)
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
	claims, refused := s.oidc.Claims(exCtx, tok, idt)
	if refused != nil {
		failBecause(refused)
		return
	}
	email := normalizeEmail(claims.Email)
	switch {
	case email == "":
		failBecause(&signin.Refusal{Reason: "email missing", Page: "signin.failed.noemail",
			Err: fmt.Errorf("neither the ID token nor UserInfo has an email claim (scopes %q)", s.oidc.Scopes())})
		return
	case !validEmail(email):
		failBecause(&signin.Refusal{Reason: "email invalid", Page: "signin.failed.noemail"})
		return
	case !bool(claims.EmailVerified):
		failBecause(&signin.Refusal{Reason: "email not verified", Page: "signin.failed.unverified"})
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
