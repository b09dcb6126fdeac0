// Package signin is the OpenID Connect side of signing in: the provider's
// discovery, the user's claims (from the ID token, else UserInfo), and the
// sealed cookie that carries a sign-in from GET /signin to the callback.
// The pages' handlers (package web) use it; it knows nothing of them.
package signin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is the client of one provider.
type Config struct {
	Issuer, ClientID, ClientSecret string
	Scopes                         []string // empty: DefaultScopes
	PublicURL                      *url.URL // the callback is its /auth/callback
}

// FlowCookie carries a sign-in's state, nonce, PKCE verifier and next path
// from GET /signin to the callback, sealed (SealFlow), for FlowLifetime at
// most.
const (
	FlowCookie   = "microapps_oidc"
	FlowLifetime = 10 * time.Minute
)

// OIDC is the OpenID Connect client, discovered lazily and then kept.
type OIDC struct {
	c           Config
	mu          sync.Mutex
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	config      oauth2.Config
	lastAttempt time.Time
	// flow seals the sign-in flow cookie (oidcflow.go).
	flow cipher.AEAD
}

// New returns the client of c; nothing is fetched until Setup.
func New(c Config) *OIDC {
	return &OIDC{c: c, flow: newFlowAEAD(c.ClientSecret)}
}

// Setup discovers the provider (once; a failure is retried after two
// seconds) and returns the OAuth2 configuration and the ID token verifier.
func (o *OIDC) Setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
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
	p, err := oidc.NewProvider(ctx, o.c.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc: discover %s: %w", o.c.Issuer, err)
	}
	redirect := *o.c.PublicURL
	redirect.Path = "/auth/callback"
	redirect.RawQuery, redirect.Fragment = "", ""
	o.provider = p
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.c.ClientID})
	o.config = oauth2.Config{
		ClientID:     o.c.ClientID,
		ClientSecret: o.c.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirect.String(),
		Scopes:       o.Scopes(),
	}
	return &o.config, o.verifier, nil
}

// DefaultScopes are asked of the provider when Config.Scopes is empty.
var DefaultScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// Scopes are the scopes asked of the provider.
func (o *OIDC) Scopes() []string {
	if len(o.c.Scopes) > 0 {
		return o.c.Scopes
	}
	return DefaultScopes
}

// Claims are what sign-in reads about the user: from the ID token, and
// from the provider's UserInfo endpoint when the ID token has no email.
// Read further claims by adding fields here; both sources fill them.
type Claims struct {
	Subject       string    `json:"sub"`
	Email         string    `json:"email"`
	EmailVerified claimBool `json:"email_verified"`
	// Groups is a list of names or one name; it may grant the console
	// (MICROAPPS_PLATFORM_ADMIN_GROUP).
	Groups json.RawMessage `json:"groups"`
}

// Refusal is why a sign-in is refused: Reason and Err go to the log, Page
// is the message key shown to the user (empty: the generic one). Pages tell
// a missing email from an unverified one and say nothing more.
type Refusal struct {
	Reason string
	Page   string
	Err    error
}

// Claims reads the user's claims from the verified ID token. OpenID
// Connect Core §5.4 lets a provider that issues an access token return the
// email scope's claims from UserInfo only, so when the ID token has no email
// they are read from there, once UserInfo's subject is known to be the ID
// token's: a claim UserInfo returns replaces the ID token's.
func (o *OIDC) Claims(ctx context.Context, tok *oauth2.Token, idt *oidc.IDToken) (Claims, *Refusal) {
	var c Claims
	if err := idt.Claims(&c); err != nil {
		return c, &Refusal{Reason: "id_token claims", Err: err}
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
		return c, &Refusal{Reason: "userinfo request", Err: err}
	}
	if ui.Subject == "" || subtle.ConstantTimeCompare([]byte(ui.Subject), []byte(idt.Subject)) != 1 {
		return c, &Refusal{Reason: "userinfo subject mismatch",
			Err: fmt.Errorf("UserInfo sub %q is not the ID token's %q", ui.Subject, idt.Subject)}
	}
	if err := ui.Claims(&c); err != nil {
		return c, &Refusal{Reason: "userinfo claims", Err: err}
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

// RandomToken is 256 random bits, URL-safe: a state or a nonce.
func RandomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Flow is what the callback needs of the sign-in that GET /signin
// started. It travels in a cookie sealed with AES-256-GCM under a key
// derived from the OIDC client secret, which every replica has, so any
// replica can finish a sign-in another one started and none of them keeps
// anything for a visitor who never comes back (a session row per anonymous
// GET /signin would let anyone fill the table).
type Flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"` // Unix seconds
}

// flowKeyLabel separates this key from any other use of the client secret.
const flowKeyLabel = "microapps oidc sign-in flow cookie v1"

func newFlowAEAD(clientSecret string) cipher.AEAD {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(flowKeyLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// SealFlow seals f for the flow cookie.
func (o *OIDC) SealFlow(f Flow) string {
	plain, _ := json.Marshal(f)
	nonce := make([]byte, o.flow.NonceSize(), o.flow.NonceSize()+len(plain)+o.flow.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(o.flow.Seal(nonce, nonce, plain, []byte(FlowCookie)))
}

// ErrBadFlow is a flow cookie altered, sealed for another client or expired.
var ErrBadFlow = errors.New("signin: sign-in flow cookie is invalid or expired")

// OpenFlow returns the flow sealed in v when it is intact and not expired.
func (o *OIDC) OpenFlow(v string, now time.Time) (Flow, error) {
	var f Flow
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < o.flow.NonceSize()+o.flow.Overhead() {
		return f, ErrBadFlow
	}
	plain, err := o.flow.Open(nil, raw[:o.flow.NonceSize()], raw[o.flow.NonceSize():], []byte(FlowCookie))
	if err != nil || json.Unmarshal(plain, &f) != nil || now.Unix() >= f.Expires {
		return Flow{}, ErrBadFlow
	}
	return f, nil
}
