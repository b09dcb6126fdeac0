package qualtricssim

import (
	"net/http"
	"strings"
	"time"
)

type oauthClient struct {
	OAuthClient
	brand   *brandState
	revoked bool
}

type accessToken struct {
	client  *oauthClient
	expires time.Time
}

// oauthToken implements the client-credentials grant. Its errors follow RFC 6749 rather than
// the Qualtrics envelope, as token endpoints do.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointOAuthToken)
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	s.mu.Lock()
	c := s.clients[id]
	if c == nil || c.revoked || c.ClientSecret != secret {
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	scope := strings.TrimSpace(r.PostForm.Get("scope"))
	if scope == "" {
		scope = c.Scope
	}
	tok := randString(s.ids, 48, alnum)
	s.access[tok] = &accessToken{client: c, expires: s.now().Add(s.ttl)}
	ttl := s.ttl
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl / time.Second), "scope": scope,
	})
}

// SetAccessTokenTTL changes the lifetime of access tokens issued from now on.
func (s *Server) SetAccessTokenTTL(d time.Duration) {
	s.mu.Lock()
	s.ttl = d
	s.mu.Unlock()
}

// ExpireAccessTokens makes every access token issued so far expired, as if their TTL had run
// out in the middle of a sync; clients must fetch a new one and retry once.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, at := range s.access {
		at.expires = past
	}
}

// RevokeClient refuses the client's credentials and every access token it holds.
func (s *Server) RevokeClient(clientID string) error { return s.setClientRevoked(clientID, true) }

// RestoreClient undoes RevokeClient; tokens issued before it work again unless expired.
func (s *Server) RestoreClient(clientID string) error { return s.setClientRevoked(clientID, false) }

func (s *Server) setClientRevoked(clientID string, revoked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[clientID]
	if c == nil {
		return ErrNotFound
	}
	c.revoked = revoked
	return nil
}
