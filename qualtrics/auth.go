package qualtrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Auth holds exactly one of the two ways to authenticate an integration.
type Auth struct {
	// Token is a static API token sent as X-API-TOKEN.
	Token string
	// OAuth uses the client credentials grant against https://{host}/oauth2/token
	// of the base URL's host and sends Authorization: Bearer.
	OAuth *OAuthConfig
}

// OAuthConfig is an OAuth 2.0 client of the brand. Scope is space-separated;
// the scope names Qualtrics expects are not documented reliably, hence free text.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	Scope        string
}

// String keeps credentials out of logs that print a Config with %v.
func (a Auth) String() string {
	switch {
	case a.OAuth != nil:
		return "oauth(client " + a.OAuth.ClientID + ")"
	case a.Token != "":
		return "token(…)"
	}
	return "none"
}

func (o OAuthConfig) String() string { return "oauth(client " + o.ClientID + ")" }

type authorizer interface {
	// header returns the header name and value to send; token identifies the
	// credential so a 401 can invalidate exactly that one.
	header(ctx context.Context) (name, value string, err error)
	// invalidate drops a cached credential after a 401; it reports whether a
	// fresh one can be fetched, i.e. whether one retry is worth it.
	invalidate(value string) bool
}

type staticToken string

func (t staticToken) header(context.Context) (string, string, error) {
	return "X-API-TOKEN", string(t), nil
}
func (staticToken) invalidate(string) bool { return false }

// oauthSource caches one access token itself rather than through
// oauth2.ReuseTokenSource, because a 401 must drop exactly the token that
// failed, and concurrent 401s must not each fetch a new one.
type oauthSource struct {
	cfg    clientcredentials.Config
	client *http.Client

	mu  sync.Mutex
	tok *oauth2.Token
}

func newOAuthSource(o *OAuthConfig, tokenURL string, client *http.Client) *oauthSource {
	cfg := clientcredentials.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       strings.Fields(o.Scope),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	return &oauthSource{cfg: cfg, client: client}
}

func (s *oauthSource) header(ctx context.Context) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil || !s.tok.Valid() {
		// The token request goes through the client's own no-redirect HTTP
		// client, so it obeys the same host policy as API calls.
		tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
		if err != nil {
			return "", "", &tokenError{err: err}
		}
		s.tok = tok
	}
	return "Authorization", "Bearer " + s.tok.AccessToken, nil
}

func (s *oauthSource) invalidate(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && "Bearer "+s.tok.AccessToken == value {
		s.tok = nil
	}
	return true
}

// tokenError is a failed OAuth token request. Its text comes from the token
// endpoint, which never echoes the client secret.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "oauth token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

func (e *tokenError) retryable() bool {
	var re *oauth2.RetrieveError
	if errors.As(e.err, &re) && re.Response != nil {
		c := re.Response.StatusCode
		return c == http.StatusTooManyRequests || c >= 500
	}
	// Anything else is the network; the caller has already ruled out its own
	// context being done.
	return true
}
