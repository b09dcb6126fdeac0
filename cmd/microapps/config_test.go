package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

var goodKey = "k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"MICROAPPS_ENCRYPTION_KEYS": goodKey,
		"MICROAPPS_AUTH_MODE":       "header",
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		use  configUse
		want string
	}{
		{"serve without an encryption key is refused", map[string]string{"MICROAPPS_ENCRYPTION_KEYS": "", "MICROAPPS_AUTH_MODE": "header"}, useServe, "MICROAPPS_ENCRYPTION_KEYS: required"},
		{"a 16-byte key says how long it is", map[string]string{"MICROAPPS_ENCRYPTION_KEYS": "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, useServe, `MICROAPPS_ENCRYPTION_KEYS: key "k1" is 16 bytes, need 32`},
		{"a key without an id is refused", map[string]string{"MICROAPPS_ENCRYPTION_KEYS": "abc"}, useServe, "MICROAPPS_ENCRYPTION_KEYS: entry 1 is not keyid:base64"},
		{"a database URL of another scheme is refused", map[string]string{"MICROAPPS_DATABASE_URL": "mysql://x"}, useServe, "MICROAPPS_DATABASE_URL: must be a postgres:// URL"},
		{"migrate checks the database URL too", map[string]string{"MICROAPPS_DATABASE_URL": "::"}, useMigrate, "MICROAPPS_DATABASE_URL"},
		{"a relative public URL is refused", map[string]string{"MICROAPPS_PUBLIC_URL": "surveys.example.com"}, useServe, "MICROAPPS_PUBLIC_URL: must be an absolute"},
		{"an unknown auth mode is refused", map[string]string{"MICROAPPS_AUTH_MODE": "ldap"}, useServe, `MICROAPPS_AUTH_MODE: "ldap" is not one of`},
		{"dev sign-in is refused outside the demo", map[string]string{"MICROAPPS_AUTH_MODE": "dev"}, useServe, "MICROAPPS_AUTH_MODE: dev sign-in"},
		{"oidc needs an issuer", map[string]string{"MICROAPPS_AUTH_MODE": "oidc"}, useServe, "MICROAPPS_OIDC_ISSUER: required"},
		{"a plain-http issuer is refused", map[string]string{"MICROAPPS_AUTH_MODE": "oidc", "MICROAPPS_OIDC_ISSUER": "http://login.example.com"}, useServe, "MICROAPPS_OIDC_ISSUER: must use https"},
		{"an issuer on a private address is no loopback", map[string]string{"MICROAPPS_AUTH_MODE": "oidc", "MICROAPPS_OIDC_ISSUER": "http://10.0.0.5:8080"}, useServe, "MICROAPPS_OIDC_ISSUER: must use https"},
		{"an issuer without scheme is refused", map[string]string{"MICROAPPS_AUTH_MODE": "oidc", "MICROAPPS_OIDC_ISSUER": "login.example.com"}, useServe, "MICROAPPS_OIDC_ISSUER: must be the absolute https URL"},
		{"scopes without openid are refused", map[string]string{"MICROAPPS_AUTH_MODE": "oidc", "MICROAPPS_OIDC_SCOPES": "email profile"}, useServe, `MICROAPPS_OIDC_SCOPES: must include "openid"`},
		{"a scope with a quote is refused", map[string]string{"MICROAPPS_AUTH_MODE": "oidc", "MICROAPPS_OIDC_SCOPES": `openid "email"`}, useServe, `MICROAPPS_OIDC_SCOPES: "\"email\"" is not a scope name`},
		{"a bad proxy CIDR is named", map[string]string{"MICROAPPS_TRUSTED_PROXIES": "10.0.0.0/33"}, useServe, `MICROAPPS_TRUSTED_PROXIES: "10.0.0.0/33"`},
		{"negative workers are refused", map[string]string{"MICROAPPS_WORKERS": "-1"}, useServe, "MICROAPPS_WORKERS"},
		{"an address without port is refused", map[string]string{"MICROAPPS_HTTP_ADDR": "localhost"}, useServe, "MICROAPPS_HTTP_ADDR"},
		{"a short admin token is refused", map[string]string{"MICROAPPS_ADMIN_TOKENS": "short"}, useServe, "MICROAPPS_ADMIN_TOKENS: token 1 is 5 characters"},
		{"SMTP needs a sender", map[string]string{"MICROAPPS_SMTP_URL": "smtp://mail.example.com:25"}, useServe, "MICROAPPS_MAIL_FROM: required"},
		{"SMTP needs the public URL its emails link to", map[string]string{"MICROAPPS_SMTP_URL": "smtp://mail.example.com:25",
			"MICROAPPS_MAIL_FROM": "surveys@example.com"}, useServe, "MICROAPPS_PUBLIC_URL: required when MICROAPPS_SMTP_URL is set"},
		{"an SMTP CA file that does not exist is named", map[string]string{"MICROAPPS_SMTP_URL": "smtp://mail.example.com:25",
			"MICROAPPS_MAIL_FROM": "surveys@example.com", "MICROAPPS_PUBLIC_URL": "https://surveys.example.com",
			"MICROAPPS_SMTP_CA_FILE": "/nonexistent/ca.pem"}, useServe, "MICROAPPS_SMTP_CA_FILE: notify: SMTP CA file"},
		{"an SMTP CA file needs SMTP", map[string]string{"MICROAPPS_SMTP_CA_FILE": "/etc/ssl/certs/ca-certificates.crt"}, useServe,
			"MICROAPPS_SMTP_CA_FILE: set, but MICROAPPS_SMTP_URL is not"},
		{"platform admins are emails", map[string]string{"MICROAPPS_PLATFORM_ADMINS": "pat@example.com, pat"}, useServe, `MICROAPPS_PLATFORM_ADMINS: "pat" is not an email`},
		{"the platform admin group needs oidc", map[string]string{"MICROAPPS_PLATFORM_ADMIN_GROUP": "microapps-admins"}, useServe, "MICROAPPS_PLATFORM_ADMIN_GROUP: only applies in oidc mode"},
		{"a read database URL of another scheme is refused", map[string]string{"MICROAPPS_DATABASE_READ_URL": "mysql://replica"}, useServe, "MICROAPPS_DATABASE_READ_URL: must be a postgres:// URL"},
		{"a read database URL that is the primary's is refused", map[string]string{"MICROAPPS_DATABASE_URL": "postgres://db/microapps",
			"MICROAPPS_DATABASE_READ_URL": "postgres://db/microapps"}, useServe, "MICROAPPS_DATABASE_READ_URL: is MICROAPPS_DATABASE_URL itself"},
		{"allowed hosts are bare names", map[string]string{"MICROAPPS_QUALTRICS_ALLOWED_HOSTS": "http://127.0.0.1"}, useServe, "MICROAPPS_QUALTRICS_ALLOWED_HOSTS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadConfig(envOf(env), tc.use)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(map[string]string{
		"MICROAPPS_ENCRYPTION_KEYS":      goodKey,
		"MICROAPPS_OIDC_ISSUER":          "https://login.example.com",
		"MICROAPPS_OIDC_CLIENT_ID":       "microapps",
		"MICROAPPS_OIDC_CLIENT_SECRET":   "s3cret-value",
		"MICROAPPS_TRUSTED_PROXIES":      "10.1.2.3, 192.168.0.0/16",
		"MICROAPPS_PLATFORM_ADMINS":      " Pat@Example.com ,, ops@example.com",
		"MICROAPPS_PLATFORM_ADMIN_GROUP": "microapps-admins",
	}), useServe)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.PlatformAdmins, ",") != "pat@example.com,ops@example.com" || c.PlatformAdminGroup != "microapps-admins" {
		t.Fatalf("platform admins = %v, group %q", c.PlatformAdmins, c.PlatformAdminGroup)
	}
	if c.HTTPAddr != ":8080" || c.AuthMode != "oidc" || c.AuthHeader != "X-Forwarded-Email" || c.Workers != 4 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.DatabaseURL != "postgres://postgres@localhost:5432/microapps?sslmode=disable" {
		t.Fatalf("database URL default = %q", c.DatabaseURL)
	}
	if c.PublicURL.String() != "http://localhost:8080" {
		t.Fatalf("public URL = %s", c.PublicURL)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0].String() != "10.1.2.3/32" {
		t.Fatalf("trusted proxies = %v", c.TrustedProxies)
	}
	if c.Keyring.Primary() != "k1" || c.SMTPURL != nil {
		t.Fatalf("keyring/smtp: %v %v", c.Keyring.KeyIDs(), c.SMTPURL)
	}
	if strings.Join(c.OIDCScopes, " ") != "openid email profile" {
		t.Fatalf("OIDC scopes = %q", c.OIDCScopes)
	}
}

func TestLoadConfigOIDCIssuerAndScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ issuer, scopes, want string }{
		{"https://login.example.com/realms/staff", "", "openid email profile"},
		{"http://127.0.0.1:5556/dex", "openid,email groups", "openid email groups"},
		{"http://localhost:8081", " openid  email offline_access openid ", "openid email offline_access"},
		{"http://[::1]:8081", "openid", "openid"},
	} {
		c, err := loadConfig(envOf(map[string]string{
			"MICROAPPS_ENCRYPTION_KEYS":    goodKey,
			"MICROAPPS_OIDC_ISSUER":        tc.issuer,
			"MICROAPPS_OIDC_CLIENT_ID":     "microapps",
			"MICROAPPS_OIDC_CLIENT_SECRET": "s3cret-value",
			"MICROAPPS_OIDC_SCOPES":        tc.scopes,
		}), useServe)
		if err != nil {
			t.Errorf("%s %q: %v", tc.issuer, tc.scopes, err)
			continue
		}
		if got := strings.Join(c.OIDCScopes, " "); got != tc.want {
			t.Errorf("%s %q: scopes %q, want %q", tc.issuer, tc.scopes, got, tc.want)
		}
	}
}

func TestLogFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(map[string]string{
		"MICROAPPS_DATABASE_URL":       "postgres://app:db-password-123@db:5432/microapps?sslmode=verify-full&sslpassword=key-pass-321",
		"MICROAPPS_DATABASE_READ_URL":  "postgres://app@replica:5432/microapps?password=replica-password-789&application_name=pages",
		"MICROAPPS_ENCRYPTION_KEYS":    goodKey,
		"MICROAPPS_ADMIN_TOKENS":       "admin-token-abcdefghijkl",
		"MICROAPPS_OIDC_ISSUER":        "https://login.example.com",
		"MICROAPPS_OIDC_CLIENT_ID":     "microapps",
		"MICROAPPS_OIDC_CLIENT_SECRET": "oidc-secret-xyz",
		"MICROAPPS_SMTP_URL":           "smtp://mailer:smtp-password-456@mail:587",
		"MICROAPPS_MAIL_FROM":          "surveys@example.com",
		"MICROAPPS_PUBLIC_URL":         "https://surveys.example.com",
	}), useServe)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	log := newLogger(&out, false, 0)
	log.Info("start", c.logFields()...)
	_ = log.Sync()
	// Issue 31, item 6: a password given as ?password= or ?sslpassword= is
	// masked too (url.Redacted masks only the user info).
	if c.ReadDatabaseURL == "" || !strings.Contains(out.String(),
		`"readDatabaseURL":"postgres://app@replica:5432/microapps?application_name=pages&password=xxxxx"`) {
		t.Errorf("log should name the read replica, masked: %s", out.String())
	}
	if !strings.Contains(out.String(), `"databaseURL":"postgres://app:xxxxx@db:5432/microapps?sslmode=verify-full&sslpassword=xxxxx"`) {
		t.Errorf("log should name the database, masked: %s", out.String())
	}
	for _, secret := range []string{"db-password-123", "replica-password-789", "key-pass-321", "admin-token-abcdefghijkl", "oidc-secret-xyz", "smtp-password-456", strings.TrimPrefix(goodKey, "k1:")} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("start-up log contains a secret %q:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), `"encryptionKeyIDs":["k1"]`) {
		t.Errorf("log should name the key ids: %s", out.String())
	}
}

// Issue 31, item 6: every URL serve logs or demo prints masks the password
// wherever the URL carries it.
func TestRedactURLMasksPasswordsInTheQuery(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://u:pw-1@h/db":                                       "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=pw-2":                              "postgres://u@h/db?password=xxxxx",
		"postgres://h/db?sslmode=require&sslpassword=pw-3":             "postgres://h/db?sslmode=require&sslpassword=xxxxx",
		"postgres://h/db?PassWord=pw-4&user=u":                         "postgres://h/db?PassWord=xxxxx&user=u",
		"smtp://relay:587?auth_token=pw-5":                             "smtp://relay:587?auth_token=xxxxx",
		"postgres://h/db?password=pw-6&password=pw-7":                  "postgres://h/db?password=xxxxx",
		"postgres://h/db?password=pw-8;x%zz":                           "postgres://h/db?xxxxx",
		"postgres://postgres@localhost:5432/microapps?sslmode=disable": "postgres://postgres@localhost:5432/microapps?sslmode=disable",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// Issue 31 (info): serve warns once when /metrics is on the public listener,
// and not at all when it has a listener of its own.
func TestServeWarnsWhenMetricsAreOnThePublicListener(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metricsAddr string
		warnings    int
	}{{"", 1}, {"127.0.0.1:9090", 0}} {
		c, err := loadConfig(envOf(map[string]string{"MICROAPPS_ENCRYPTION_KEYS": goodKey, "MICROAPPS_AUTH_MODE": "header",
			"MICROAPPS_METRICS_ADDR": tc.metricsAddr}), useServe)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		log := newLogger(&out, false, 0)
		c.warnStart(log)
		_ = log.Sync()
		if n := strings.Count(out.String(), `"level":"warn"`); n != tc.warnings || (n == 1 && !strings.Contains(out.String(), "MICROAPPS_METRICS_ADDR")) {
			t.Errorf("MICROAPPS_METRICS_ADDR=%q: %d warnings, want %d:\n%s", tc.metricsAddr, n, tc.warnings, out.String())
		}
	}
}
