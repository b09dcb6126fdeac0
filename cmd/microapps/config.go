package main

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/web/signin"
)

// config is every setting of the service, read once from the environment:
// the settings of the replica it runs (see replica.Options for each field).
type config struct {
	replica.Options
}

// envVar documents one variable; the list is the single source for parsing,
// the README table and the deploy manifests' test.
type envVar struct {
	Name    string
	Default string
	Secret  bool
}

var envVars = []envVar{
	{Name: "MICROAPPS_DATABASE_URL", Default: "postgres://postgres@localhost:5432/microapps?sslmode=disable", Secret: true},
	{Name: "MICROAPPS_HTTP_ADDR", Default: ":8080"},
	{Name: "MICROAPPS_METRICS_ADDR"},
	{Name: "MICROAPPS_PUBLIC_URL", Default: "http://localhost:8080"},
	{Name: "MICROAPPS_ADMIN_TOKENS", Secret: true},
	{Name: "MICROAPPS_ENCRYPTION_KEYS", Secret: true},
	{Name: "MICROAPPS_AUTH_MODE", Default: "oidc"},
	{Name: "MICROAPPS_AUTH_HEADER", Default: "X-Forwarded-Email"},
	{Name: "MICROAPPS_TRUSTED_PROXIES", Default: "127.0.0.1/32,::1/128"},
	{Name: "MICROAPPS_OIDC_ISSUER"},
	{Name: "MICROAPPS_OIDC_CLIENT_ID"},
	{Name: "MICROAPPS_OIDC_CLIENT_SECRET", Secret: true},
	{Name: "MICROAPPS_OIDC_SCOPES", Default: "openid email profile"},
	{Name: "MICROAPPS_QUALTRICS_ALLOWED_HOSTS"},
	{Name: "MICROAPPS_WEBHOOK_ALLOWED_HOSTS"},
	{Name: "MICROAPPS_WORKERS", Default: "4"},
	{Name: "MICROAPPS_SMTP_URL", Secret: true},
	{Name: "MICROAPPS_MAIL_FROM"},
	{Name: "MICROAPPS_SMTP_CA_FILE"},
	{Name: "MICROAPPS_PLATFORM_ADMINS"},
	{Name: "MICROAPPS_PLATFORM_ADMIN_GROUP"},
	{Name: "MICROAPPS_DATABASE_READ_URL", Secret: true},
}

// envDefault is the default value of variable name.
func envDefault(name string) string {
	for _, ev := range envVars {
		if ev.Name == name {
			return ev.Default
		}
	}
	return ""
}

// configUse says what the command needs, because demo and migrate need less
// than serve.
type configUse int

const (
	useServe configUse = iota
	useMigrate
	useDemo
	useReseal
)

// loadConfig parses and validates the environment. Every problem is reported
// at once, each naming its variable.
func loadConfig(getenv func(string) string, use configUse) (*config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return envDefault(name)
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := &config{replica.Options{
		DatabaseURL:      get("MICROAPPS_DATABASE_URL"),
		HTTPAddr:         get("MICROAPPS_HTTP_ADDR"),
		MetricsAddr:      get("MICROAPPS_METRICS_ADDR"),
		AuthMode:         get("MICROAPPS_AUTH_MODE"),
		AuthHeader:       get("MICROAPPS_AUTH_HEADER"),
		OIDCIssuer:       get("MICROAPPS_OIDC_ISSUER"),
		OIDCClientID:     get("MICROAPPS_OIDC_CLIENT_ID"),
		OIDCClientSecret: get("MICROAPPS_OIDC_CLIENT_SECRET"),
		MailFrom:         get("MICROAPPS_MAIL_FROM"),
		SMTPCAFile:       get("MICROAPPS_SMTP_CA_FILE"),
	}}

	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("MICROAPPS_DATABASE_URL", "must be a postgres:// URL")
	}
	if use == useMigrate {
		return c, errors.Join(errs...)
	}
	if use == useReseal {
		if c.Keyring, errs = parseKeys(get("MICROAPPS_ENCRYPTION_KEYS"), errs); c.Keyring == nil && len(errs) == 0 {
			bad("MICROAPPS_ENCRYPTION_KEYS", "required: reseal seals with its first key")
		}
		return c, errors.Join(errs...)
	}

	if raw := get("MICROAPPS_DATABASE_READ_URL"); raw != "" {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("MICROAPPS_DATABASE_READ_URL", "must be a postgres:// URL (a streaming replica of MICROAPPS_DATABASE_URL), or unset")
		} else if raw == c.DatabaseURL {
			bad("MICROAPPS_DATABASE_READ_URL", "is MICROAPPS_DATABASE_URL itself; leave it unset to read from the primary")
		} else {
			c.ReadDatabaseURL = raw
		}
	}

	if _, port, err := splitAddr(c.HTTPAddr); err != nil {
		bad("MICROAPPS_HTTP_ADDR", "%v", err)
	} else if port < 0 || port > 65535 {
		bad("MICROAPPS_HTTP_ADDR", "port %d is out of range", port)
	}

	if c.MetricsAddr != "" {
		if _, port, err := splitAddr(c.MetricsAddr); err != nil {
			bad("MICROAPPS_METRICS_ADDR", "%v", err)
		} else if port < 0 || port > 65535 {
			bad("MICROAPPS_METRICS_ADDR", "port %d is out of range", port)
		} else if c.MetricsAddr == c.HTTPAddr {
			bad("MICROAPPS_METRICS_ADDR", "must differ from MICROAPPS_HTTP_ADDR (leave it empty to serve /metrics there)")
		}
	}

	if u, err := url.Parse(get("MICROAPPS_PUBLIC_URL")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("MICROAPPS_PUBLIC_URL", "must be an absolute http(s) URL such as https://surveys.example.com")
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/")
		c.PublicURL = u
	}

	for _, tok := range strings.Split(get("MICROAPPS_ADMIN_TOKENS"), ",") {
		if tok = strings.TrimSpace(tok); tok == "" {
			continue
		}
		if len(tok) < 16 {
			bad("MICROAPPS_ADMIN_TOKENS", "token %d is %d characters, need at least 16", len(c.AdminTokens)+1, len(tok))
		}
		c.AdminTokens = append(c.AdminTokens, tok)
	}

	if c.Keyring, errs = parseKeys(get("MICROAPPS_ENCRYPTION_KEYS"), errs); c.Keyring == nil && use == useServe && get("MICROAPPS_ENCRYPTION_KEYS") == "" {
		bad("MICROAPPS_ENCRYPTION_KEYS", "required: give keyid:base64(32 random bytes), e.g. k1:$(openssl rand -base64 32)")
	}

	switch c.AuthMode {
	case "oidc":
		if use == useServe {
			if c.OIDCIssuer == "" {
				bad("MICROAPPS_OIDC_ISSUER", "required in oidc mode: the issuer URL of your identity provider")
			} else if err := signin.CheckIssuer(c.OIDCIssuer); err != nil {
				bad("MICROAPPS_OIDC_ISSUER", "%v", err)
			}
			if c.OIDCClientID == "" {
				bad("MICROAPPS_OIDC_CLIENT_ID", "required in oidc mode")
			}
			if c.OIDCClientSecret == "" {
				bad("MICROAPPS_OIDC_CLIENT_SECRET", "required in oidc mode")
			}
		}
		var errScopes error
		if c.OIDCScopes, errScopes = parseScopes(get("MICROAPPS_OIDC_SCOPES")); errScopes != nil {
			bad("MICROAPPS_OIDC_SCOPES", "%v", errScopes)
		}
	case "header":
		if c.AuthHeader == "" || strings.ContainsAny(c.AuthHeader, " :\t") {
			bad("MICROAPPS_AUTH_HEADER", "%q is not a header name", c.AuthHeader)
		}
	case "dev":
		if use != useDemo {
			bad("MICROAPPS_AUTH_MODE", "dev sign-in lets anyone act as anyone and is only allowed under `microapps demo`")
		}
	default:
		bad("MICROAPPS_AUTH_MODE", "%q is not one of oidc, header, dev", c.AuthMode)
	}

	for _, s := range strings.Split(get("MICROAPPS_TRUSTED_PROXIES"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				bad("MICROAPPS_TRUSTED_PROXIES", "%q is not a CIDR such as 10.0.0.0/8", s)
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}

	hosts := func(name string) []string {
		var out []string
		for _, h := range strings.Split(get(name), ",") {
			if h = strings.ToLower(strings.TrimSpace(h)); h == "" {
				continue
			}
			if strings.ContainsAny(h, "/:@ ") && !isIPv6(h) {
				bad(name, "%q must be a bare host name such as 127.0.0.1 (no scheme, port or path)", h)
				continue
			}
			out = append(out, h)
		}
		return out
	}
	c.QualtricsAllowedHosts = hosts("MICROAPPS_QUALTRICS_ALLOWED_HOSTS")
	c.WebhookAllowedHosts = hosts("MICROAPPS_WEBHOOK_ALLOWED_HOSTS")

	for _, e := range strings.Split(get("MICROAPPS_PLATFORM_ADMINS"), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e == "" {
			continue
		}
		if strings.Count(e, "@") != 1 || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@") || strings.ContainsAny(e, " <>\"") {
			bad("MICROAPPS_PLATFORM_ADMINS", "%q is not an email address such as pat@example.com", e)
			continue
		}
		c.PlatformAdmins = append(c.PlatformAdmins, e)
	}
	if g := get("MICROAPPS_PLATFORM_ADMIN_GROUP"); g != "" {
		if c.AuthMode != "oidc" {
			bad("MICROAPPS_PLATFORM_ADMIN_GROUP", "only applies in oidc mode (the group comes from the ID token's groups claim)")
		}
		c.PlatformAdminGroup = g
	}

	if n, err := strconv.Atoi(get("MICROAPPS_WORKERS")); err != nil || n < 0 || n > 256 {
		bad("MICROAPPS_WORKERS", "%q must be a whole number from 0 (web only) to 256", get("MICROAPPS_WORKERS"))
	} else {
		c.Workers = n
	}

	if raw := get("MICROAPPS_SMTP_URL"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			bad("MICROAPPS_SMTP_URL", "must look like smtp://user:password@host:587 or smtps://host:465")
		} else {
			c.SMTPURL = u
		}
		if c.MailFrom == "" {
			bad("MICROAPPS_MAIL_FROM", "required when MICROAPPS_SMTP_URL is set")
		}
		if strings.TrimSpace(getenv("MICROAPPS_PUBLIC_URL")) == "" && use == useServe {
			bad("MICROAPPS_PUBLIC_URL", "required when MICROAPPS_SMTP_URL is set: emails link to this service, and the default %s reaches no one else",
				get("MICROAPPS_PUBLIC_URL"))
		}
	}
	if c.SMTPCAFile != "" {
		if c.SMTPURL == nil {
			bad("MICROAPPS_SMTP_CA_FILE", "set, but MICROAPPS_SMTP_URL is not")
		} else if _, err := notify.NewSMTPMailer(c.SMTPURL.String(), c.MailFrom, notify.WithSMTPCAFile(c.SMTPCAFile)); err != nil && c.MailFrom != "" {
			bad("MICROAPPS_SMTP_CA_FILE", "%v", err)
		}
	}
	c.PublicURLDefaulted = strings.TrimSpace(getenv("MICROAPPS_PUBLIC_URL")) == "" && use == useServe
	return c, errors.Join(errs...)
}

// parseScopes reads the OAuth scopes asked of the OpenID provider, separated
// by spaces or commas; openid must be one of them.
func parseScopes(raw string) ([]string, error) {
	var scopes []string
	hasOpenID := false
	for _, sc := range strings.FieldsFunc(raw, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		// RFC 6749 §3.3: a scope token is printable ASCII but space, " and \.
		if strings.ContainsFunc(sc, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
			return nil, fmt.Errorf("%q is not a scope name", sc)
		}
		if slices.Contains(scopes, sc) {
			continue
		}
		hasOpenID = hasOpenID || sc == "openid"
		scopes = append(scopes, sc)
	}
	if !hasOpenID {
		return nil, errors.New(`must include "openid", e.g. "openid email profile"`)
	}
	return scopes, nil
}

func parseKeys(raw string, errs []error) (*seal.Keyring, []error) {
	if raw == "" {
		return nil, errs
	}
	kr, err := seal.ParseKeyring(raw)
	if err != nil {
		return nil, append(errs, fmt.Errorf("MICROAPPS_ENCRYPTION_KEYS: %v", err))
	}
	return kr, errs
}

func splitAddr(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q must be host:port or :port", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("%q has no numeric port", addr)
	}
	return addr[:i], port, nil
}

func isIPv6(h string) bool {
	a, err := netip.ParseAddr(h)
	return err == nil && a.Is6()
}

// logFields describes the configuration for the start-up log with every
// secret masked.
func (c *config) logFields() []zap.Field {
	fields := []zap.Field{
		zap.String("databaseURL", redactURL(c.DatabaseURL)),
		zap.String("httpAddr", c.HTTPAddr),
		zap.String("metricsAddr", c.MetricsAddr),
		zap.Int("adminTokens", len(c.AdminTokens)),
		zap.String("authMode", c.AuthMode),
		zap.Int("workers", c.Workers),
		zap.Strings("qualtricsAllowedHosts", c.QualtricsAllowedHosts),
		zap.Strings("webhookAllowedHosts", c.WebhookAllowedHosts),
		zap.Bool("email", c.SMTPURL != nil),
		zap.Int("platformAdmins", len(c.PlatformAdmins)),
	}
	if c.ReadDatabaseURL != "" {
		fields = append(fields, zap.String("readDatabaseURL", redactURL(c.ReadDatabaseURL)))
	}
	if c.PublicURL != nil {
		fields = append(fields, zap.String("publicURL", c.PublicURL.String()))
	}
	if c.Keyring != nil {
		fields = append(fields, zap.Strings("encryptionKeyIDs", c.Keyring.KeyIDs()))
	}
	if c.AuthMode == "header" {
		fields = append(fields, zap.String("authHeader", c.AuthHeader))
	}
	if c.AuthMode == "oidc" {
		fields = append(fields, zap.String("oidcIssuer", c.OIDCIssuer), zap.String("oidcClientID", c.OIDCClientID),
			zap.Strings("oidcScopes", c.OIDCScopes))
	}
	if c.SMTPURL != nil {
		fields = append(fields, zap.String("smtp", redactURL(c.SMTPURL.String())))
	}
	return fields
}

// metricsWarning is serve's start-up warning when /metrics is on the public
// listener (MICROAPPS_METRICS_ADDR empty, which the configuration allows).
const metricsWarning = "/metrics is served on the public listener: anyone who reaches the service reads its " +
	"integration ids, queue depths and routes; set MICROAPPS_METRICS_ADDR (e.g. :9090) to serve it on a listener " +
	"of its own that only Prometheus reaches"

// warnStart logs, once at start, what works but should be changed in
// production.
func (c *config) warnStart(log *zap.Logger) {
	if c.MetricsAddr == "" {
		log.Warn(metricsWarning, zap.String("httpAddr", c.HTTPAddr))
	}
}

// redactURL is raw as it may be logged or printed: the password of the user
// info, and the value of every query parameter that names a password or
// another secret (PostgreSQL's password and sslpassword, and the like),
// masked. url.Redacted alone masks only the user info.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "xxxxx" // an unreadable query may still hold a secret
		} else {
			for k := range q {
				if secretParam(k) {
					q[k] = []string{"xxxxx"}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// secretParam says whether a URL query parameter's value is a secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"pass", "pwd", "secret", "token", "credential", "apikey", "api_key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// replicaOptions is the replica the configuration describes.
func (c *config) replicaOptions() replica.Options { return c.Options }
