package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	gomail "github.com/wneessen/go-mail"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// checkTimeout bounds each connection a check makes, so an address that
// drops packets costs seconds, not minutes.
const checkTimeout = 10 * time.Second

// checker prints one line per check and counts the failures. Every line
// goes through redact, so no configured secret is ever printed, whatever an
// error message quotes.
type checker struct {
	w       io.Writer
	secrets []string
	failed  int
	total   int
}

func (c *checker) ok(name, format string, args ...any) {
	c.total++
	fmt.Fprintf(c.w, "ok   %s: %s\n", name, c.redact(fmt.Sprintf(format, args...)))
}

func (c *checker) fail(name, format string, args ...any) {
	c.total++
	c.failed++
	fmt.Fprintf(c.w, "FAIL %s: %s\n", name, c.redact(fmt.Sprintf(format, args...)))
}

func (c *checker) redact(s string) string {
	for _, sec := range c.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "…")
		}
	}
	return s
}

// runCheck is `microapps check`: it reads the configuration as serve does
// and connects to everything it names: PostgreSQL and the schema, the read
// replica, the SMTP relay (STARTTLS and login, no mail sent), the OpenID
// issuer's discovery document, and each integration's Qualtrics credential
// (GET /whoami). The configuration has no Slack or Teams variable yet; when
// it has, their checks belong here (Slack's auth.test; the Teams workflow URL
// for its form only, never posted to).
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return errors.New("check takes no arguments, configuration comes from MICROAPPS_* variables")
	}
	c := &checker{w: stdout}
	cfg, cfgErr := loadConfig(getenv, useServe)
	c.secrets = configSecrets(cfg)
	if cfgErr != nil {
		for _, line := range strings.Split(cfgErr.Error(), "\n") {
			name, problem, _ := strings.Cut(line, ": ")
			c.fail("configuration", "%s: %s", name, problem)
		}
	} else {
		c.ok("configuration", "every MICROAPPS_* variable is valid")
	}

	st := c.database(ctx, cfg.DatabaseURL)
	if st != nil {
		defer st.Close()
	}
	if cfg.ReadDatabaseURL != "" {
		c.readReplica(ctx, cfg.ReadDatabaseURL)
	}
	c.smtp(ctx, cfg)
	if cfg.AuthMode == "oidc" {
		c.issuer(ctx, cfg.OIDCIssuer)
	}
	if st != nil {
		c.qualtrics(ctx, st, cfg)
	}

	if c.failed > 0 {
		return fmt.Errorf("check: %d of %d checks failed", c.failed, c.total)
	}
	return nil
}

// configSecrets lists the secret values of the configuration.
func configSecrets(cfg *config) []string {
	var out []string
	for _, raw := range []string{cfg.DatabaseURL, cfg.ReadDatabaseURL} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p, url.QueryEscape(p))
			}
		}
	}
	if cfg.SMTPURL != nil && cfg.SMTPURL.User != nil {
		if p, ok := cfg.SMTPURL.User.Password(); ok {
			out = append(out, p, url.QueryEscape(p))
		}
	}
	out = append(out, cfg.AdminTokens...)
	if cfg.OIDCClientSecret != "" {
		out = append(out, cfg.OIDCClientSecret)
	}
	return out
}

// where names a database URL's host and database, never its user or
// password.
func where(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Host + u.Path
}

func (c *checker) database(ctx context.Context, databaseURL string) *store.Store {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	st, err := store.Open(ctx, databaseURL, store.Options{AppName: "microapps-check", MaxConns: 4})
	if err != nil {
		c.fail("database", "cannot connect to %s (%v): check MICROAPPS_DATABASE_URL and that PostgreSQL runs and accepts this user", where(databaseURL), err)
		return nil
	}
	var version string
	if err := st.Pool().QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		c.fail("database", "connected to %s, but a query failed (%v)", where(databaseURL), err)
		st.Close()
		return nil
	}
	c.ok("database", "PostgreSQL %s at %s", version, where(databaseURL))

	s, err := migrations.Check(ctx, st.Pool())
	switch {
	case err != nil:
		c.fail("schema", "cannot read the schema version (%v)", err)
	case s.Dirty:
		c.fail("schema", "dirty (%s): a migration failed half-way; fix it by hand, then run `microapps migrate up`", s)
	case s.Version > s.Latest || s.River > s.RiverLatest:
		c.fail("schema", "newer than this binary (%s): deploy the newer version of microapps", s)
	case !s.Current():
		c.fail("schema", "behind (%s): run `microapps migrate up`, then start serve", s)
	default:
		c.ok("schema", "%s, as this binary expects", s)
	}
	return st
}

func (c *checker) readReplica(ctx context.Context, readURL string) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	rs, err := store.Open(ctx, readURL, store.Options{AppName: "microapps-check", MaxConns: 1})
	if err != nil {
		c.fail("read replica", "cannot connect to %s (%v): check MICROAPPS_DATABASE_READ_URL; until it answers the pages read from the primary", where(readURL), err)
		return
	}
	defer rs.Close()
	var standby bool
	if err := rs.Pool().QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		c.fail("read replica", "connected to %s, but a query failed (%v)", where(readURL), err)
		return
	}
	if !standby {
		c.fail("read replica", "%s is not a standby in recovery (promoted, or not a replica of the primary): point MICROAPPS_DATABASE_READ_URL at a streaming standby, or unset it", where(readURL))
		return
	}
	c.ok("read replica", "%s is a standby in recovery", where(readURL))
}

// smtp connects to the relay as the mailer does (STARTTLS, or TLS from the
// first byte for smtps, and AUTH when the URL has a user), and sends no mail.
func (c *checker) smtp(ctx context.Context, cfg *config) {
	if cfg.SMTPURL == nil {
		c.ok("smtp", "off (MICROAPPS_SMTP_URL is not set): no email is sent, the feed and chat still get every notice")
		return
	}
	u := cfg.SMTPURL
	// notify validates the URL, the sender and the CA file as serve does.
	if _, err := notify.NewSMTPMailer(u.String(), cfg.MailFrom, notify.WithSMTPCAFile(cfg.SMTPCAFile)); err != nil {
		c.fail("smtp", "%v: fix MICROAPPS_SMTP_URL, MICROAPPS_MAIL_FROM or MICROAPPS_SMTP_CA_FILE", strings.TrimPrefix(err.Error(), "notify: "))
		return
	}
	client, mode, err := smtpClient(u, cfg.SMTPCAFile)
	if err != nil {
		c.fail("smtp", "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := client.DialWithContext(ctx); err != nil {
		c.fail("smtp", "%s", smtpAdvice(u, err))
		return
	}
	_ = client.Close()
	auth := "no login (the URL has no user)"
	if u.User != nil && u.User.Username() != "" {
		auth = "logged in as " + u.User.Username()
	}
	c.ok("smtp", "%s answered, %s, %s", u.Host, mode, auth)
}

// smtpClient is a go-mail client set up as notify's mailer sets up its own
// from MICROAPPS_SMTP_URL (smtp://: STARTTLS on 587, mandatory with a user;
// smtps://: TLS on 465; ?tls=mandatory|opportunistic|none).
func smtpClient(u *url.URL, caFile string) (*gomail.Client, string, error) {
	host := u.Hostname()
	port, ssl := 587, false
	if u.Scheme == "smtps" {
		port, ssl = 465, true
	}
	if p := u.Port(); p != "" {
		fmt.Sscan(p, &port)
	}
	user, pass := "", ""
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	policy, mode := gomail.TLSOpportunistic, "STARTTLS if offered"
	if user != "" {
		policy, mode = gomail.TLSMandatory, "STARTTLS"
	}
	switch u.Query().Get("tls") {
	case "mandatory":
		policy, mode = gomail.TLSMandatory, "STARTTLS"
	case "opportunistic":
		policy, mode = gomail.TLSOpportunistic, "STARTTLS if offered"
	case "none":
		policy, mode = gomail.NoTLS, "no TLS (tls=none)"
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(checkTimeout), gomail.WithTLSPolicy(policy)}
	if ssl {
		opts, mode = append(opts, gomail.WithSSL()), "TLS"
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, "", fmt.Errorf("cannot read MICROAPPS_SMTP_CA_FILE (%v)", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	if user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot set up the SMTP client (%v): fix MICROAPPS_SMTP_URL", err)
	}
	return client, mode, nil
}

// smtpAdvice says what went wrong with the relay and what to do.
func smtpAdvice(u *url.URL, err error) string {
	var te *textproto.Error
	var cv *tls.CertificateVerificationError
	var ne net.Error
	var oe *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &te) && te.Code == 535, strings.Contains(msg, "535"):
		return fmt.Sprintf("%s refused the user name and password (535): fix the credentials in MICROAPPS_SMTP_URL", u.Host)
	case errors.As(err, &cv), strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return fmt.Sprintf("TLS with %s failed, its certificate is not trusted (%v): put the relay's CA in MICROAPPS_SMTP_CA_FILE", u.Host, err)
	case strings.Contains(msg, "STARTTLS") || strings.Contains(msg, "starttls"):
		return fmt.Sprintf("%s does not offer STARTTLS (%v): use a relay that does, smtps://, or ?tls=none for a relay on loopback only", u.Host, err)
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("cannot reach %s (%v): check the host and port in MICROAPPS_SMTP_URL and the network path to the relay", u.Host, err)
	}
	return fmt.Sprintf("%s: %v: check MICROAPPS_SMTP_URL", u.Host, err)
}

// issuer reads the OpenID provider's discovery document, as sign-in does.
func (c *checker) issuer(ctx context.Context, issuer string) {
	if issuer == "" {
		return // reported with the configuration
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: checkTimeout})
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		c.fail("openid issuer", "cannot read %s/.well-known/openid-configuration (%v): check MICROAPPS_OIDC_ISSUER and that this host reaches the identity provider",
			strings.TrimSuffix(issuer, "/"), err)
		return
	}
	ep := p.Endpoint()
	var claims struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&claims); err != nil || ep.AuthURL == "" || ep.TokenURL == "" || claims.JWKS == "" {
		c.fail("openid issuer", "%s's discovery document lacks the authorization, token or keys endpoint: check MICROAPPS_OIDC_ISSUER", issuer)
		return
	}
	c.ok("openid issuer", "%s (authorization, token and keys endpoints found)", issuer)
}

// qualtrics checks each integration's credential with GET /whoami, through
// the client the syncs use (the credential opened with the keyring, the
// brand's budget drawn from).
func (c *checker) qualtrics(ctx context.Context, st *store.Store, cfg *config) {
	ins, err := st.ListIntegrations(ctx)
	if err != nil {
		c.fail("qualtrics", "cannot list the integrations (%v): the schema must be migrated first", err)
		return
	}
	if len(ins) == 0 {
		c.ok("qualtrics", "no integration registered yet")
		return
	}
	if cfg.Keyring == nil {
		c.fail("qualtrics", "%d integrations, and no MICROAPPS_ENCRYPTION_KEYS to open their credentials: set the keys serve uses", len(ins))
		return
	}
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: cfg.Keyring, AllowedHosts: cfg.QualtricsAllowedHosts,
		ClientConfig: func(qc *qualtrics.Config) {
			qc.Timeout, qc.MaxAttempts, qc.MaxThrottled = checkTimeout, 2, 2
			qc.BackoffBase, qc.BackoffMax, qc.MaxRetryAfter = 200*time.Millisecond, time.Second, 5*time.Second
		}})
	if err != nil {
		c.fail("qualtrics", "%v", err)
		return
	}
	for _, in := range ins {
		name := fmt.Sprintf("qualtrics %q (%s)", in.Name, in.ID)
		client, err := sy.Client(in)
		if err != nil {
			c.fail(name, "its credential does not open (%v): MICROAPPS_ENCRYPTION_KEYS must hold key %q it was sealed with", err, in.SecretKeyID)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*checkTimeout)
		who, err := client.WhoAmI(cctx)
		cancel()
		var apiErr *qualtrics.APIError
		switch {
		case err == nil:
			c.ok(name, "brand %s, %s account, status %s", who.BrandID, who.AccountType, in.Status)
		case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden):
			c.fail(name, "Qualtrics refused its credential (%d %s): ask the Brand Admin for a new one and PUT it to /api/v1/integrations/%s/token",
				apiErr.StatusCode, apiErr.ErrorCode, in.ID)
		case qualtrics.IsRateLimited(err):
			c.fail(name, "Qualtrics answered 429 (the brand's budget is used up): try again in a minute")
		default:
			c.fail(name, "GET /whoami on %s failed (%v): check the network path to Qualtrics and the integration's baseUrl", hostOf(in.BaseURL), err)
		}
	}
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "(unparsable baseUrl)"
}
