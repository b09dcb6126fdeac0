package qualtrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const testClientSecret = "cs-SECRET-do-not-leak-5678"

// oauthServer serves /oauth2/token and /API/v3/whoami on one host, as
// Qualtrics does. rejectFirst makes the API refuse the first token it sees
// (as if revoked); rejectAll makes it refuse every token.
type oauthServer struct {
	srv         *httptest.Server
	tokens      atomic.Int32
	apiCalls    atomic.Int32
	rejectFirst bool
	rejectAll   bool

	mu       sync.Mutex
	badForms []string
}

func newOAuthServer(t *testing.T, rejectFirst, rejectAll bool) *oauthServer {
	t.Helper()
	s := &oauthServer{rejectFirst: rejectFirst, rejectAll: rejectAll}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			id, secret, ok := r.BasicAuth()
			_ = r.ParseForm()
			if !ok || id != "client-1" || secret != testClientSecret || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "read:surveys read:distributions" {
				s.mu.Lock()
				s.badForms = append(s.badForms, fmt.Sprintf("basic=%v id=%q form=%v", ok, id, r.PostForm))
				s.mu.Unlock()
				writeJSON(w, 401, `{"error":"invalid_client"}`)
				return
			}
			n := s.tokens.Add(1)
			writeJSON(w, 200, fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"scope":"read:surveys"}`, n))
		case "/API/v3/whoami":
			s.apiCalls.Add(1)
			auth := r.Header.Get("Authorization")
			if r.Header.Get("X-API-TOKEN") != "" || !strings.HasPrefix(auth, "Bearer at-") || s.rejectAll || (s.rejectFirst && auth == "Bearer at-1") {
				writeJSON(w, 401, errBody("401 - Unauthorized", "DCD_7", "Unrecognized token."))
				return
			}
			whoamiOK(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *oauthServer) client(t *testing.T) (*Client, *recorder) {
	return newTestClient(t, s.srv, func(cfg *Config) {
		cfg.Auth = Auth{OAuth: &OAuthConfig{ClientID: "client-1", ClientSecret: testClientSecret, Scope: "read:surveys read:distributions"}}
	})
}

func TestOAuth(t *testing.T) {
	t.Parallel()
	t.Run("a token is fetched once and reused by concurrent calls", func(t *testing.T) {
		t.Parallel()
		s := newOAuthServer(t, false, false)
		c, _ := s.client(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := c.WhoAmI(ctxT(t))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if s.tokens.Load() != 1 || s.apiCalls.Load() != 8 {
			t.Fatalf("tokens %d, api calls %d; want 1 and 8 (bad token requests: %v)", s.tokens.Load(), s.apiCalls.Load(), s.badForms)
		}
	})
	t.Run("a 401 drops the token, fetches a new one and retries once", func(t *testing.T) {
		t.Parallel()
		s := newOAuthServer(t, true, false)
		c, rec := s.client(t)
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if s.tokens.Load() != 2 || s.apiCalls.Load() != 2 {
			t.Fatalf("tokens %d, api calls %d; want 2 and 2", s.tokens.Load(), s.apiCalls.Load())
		}
		ev := rec.all()
		if len(ev) != 2 || ev[0].Status != 401 || !ev[0].Retry || ev[1].Status != 200 || ev[1].Attempt != 2 {
			t.Fatalf("events = %+v", ev)
		}
	})
	// Two refreshes: a token can also expire while its request waits for
	// the brand's budget, after its header was written; a client whose
	// fresh tokens are refused twice is reported.
	t.Run("a token refused again is reported as unauthorized after two refreshes", func(t *testing.T) {
		t.Parallel()
		s := newOAuthServer(t, false, true)
		c, rec := s.client(t)
		_, err := c.WhoAmI(ctxT(t))
		if !IsUnauthorized(err) || s.tokens.Load() != 3 || s.apiCalls.Load() != 3 {
			t.Fatalf("err = %v, tokens %d, api calls %d", err, s.tokens.Load(), s.apiCalls.Load())
		}
		for _, e := range rec.all() {
			if e.Err != nil && (strings.Contains(e.Err.Error(), testClientSecret) || strings.Contains(e.Err.Error(), "at-")) {
				t.Fatalf("event leaks a credential: %v", e.Err)
			}
		}
	})
	t.Run("a refused client credential fails without leaking the secret", func(t *testing.T) {
		t.Parallel()
		s := newOAuthServer(t, false, false)
		c, _ := newTestClient(t, s.srv, func(cfg *Config) {
			cfg.Auth = Auth{OAuth: &OAuthConfig{ClientID: "client-1", ClientSecret: "wrong-" + testClientSecret}}
		})
		_, err := c.WhoAmI(ctxT(t))
		if err == nil || strings.Contains(err.Error(), testClientSecret) || s.apiCalls.Load() != 0 {
			t.Fatalf("err = %v, api calls %d", err, s.apiCalls.Load())
		}
	})
	t.Run("printing the auth config hides the secret", func(t *testing.T) {
		t.Parallel()
		a := Auth{Token: testToken}
		o := Auth{OAuth: &OAuthConfig{ClientID: "client-1", ClientSecret: testClientSecret}}
		for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v", o), fmt.Sprintf("%+v", Config{Auth: a}), fmt.Sprint(*o.OAuth)} {
			if strings.Contains(s, testToken) || strings.Contains(s, testClientSecret) {
				t.Fatalf("%q leaks a credential", s)
			}
		}
	})
}
