package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/zap"

	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// checkWorld is what a configuration names, on loopback: a migrated
// database with one integration on a simulated Qualtrics, an SMTP relay
// with STARTTLS (a private CA) and AUTH, and an OpenID provider.
type checkWorld struct {
	env      map[string]string
	dbURL    string
	sim      *qualtricssim.Server
	token    string
	smtpPass string
}

const checkSMTPPass = "relay-pass-4242"

func newCheckWorld(t *testing.T) *checkWorld {
	t.Helper()
	ctx := context.Background()
	w := &checkWorld{dbURL: storetest.NewMigrated(t), smtpPass: checkSMTPPass}

	brand := qualtricssim.Generate(11, qualtricssim.Spec{BrandID: "checkbrand", Surveys: 1, Recipients: 5})
	w.sim = qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &qualtricssim.Limits{Disabled: true}})
	simSrv := httptest.NewServer(w.sim)
	t.Cleanup(simSrv.Close)
	w.token = brand.Users[0].Tokens[0]

	// The integration is registered as the admin API registers one.
	kr, err := seal.ParseKeyring(goodKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, w.dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	name, base := "Sales", simSrv.URL+"/API/v3/"
	svc := manage.New(manage.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, Log: zap.NewNop()})
	if _, err := svc.Create(ctx, "test", manage.IntegrationPatch{Name: &name, BaseURL: &base, Credential: &manage.Credential{Token: &w.token}}); err != nil {
		t.Fatal(err)
	}

	caFile, cert := checkCA(t)
	relay := startCheckRelay(t, cert, "mailer", checkSMTPPass)
	issuer := startIssuer(t)
	w.env = map[string]string{
		"MICROAPPS_DATABASE_URL":            w.dbURL,
		"MICROAPPS_ENCRYPTION_KEYS":         goodKey,
		"MICROAPPS_PUBLIC_URL":              "https://surveys.example.com",
		"MICROAPPS_AUTH_MODE":               "oidc",
		"MICROAPPS_OIDC_ISSUER":             issuer,
		"MICROAPPS_OIDC_CLIENT_ID":          "microapps",
		"MICROAPPS_OIDC_CLIENT_SECRET":      "oidc-client-secret-77",
		"MICROAPPS_QUALTRICS_ALLOWED_HOSTS": "127.0.0.1",
		"MICROAPPS_SMTP_URL":                "smtp://mailer:" + checkSMTPPass + "@" + relay,
		"MICROAPPS_MAIL_FROM":               "surveys@example.com",
		"MICROAPPS_SMTP_CA_FILE":            caFile,
		"MICROAPPS_ADMIN_TOKENS":            "check-admin-token-0123456789",
	}
	return w
}

func (w *checkWorld) run(t *testing.T) (string, error) {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"check"}, envOf(w.env), &out)
	return out.String(), err
}

// lineOf returns the output's line of check with status ok or FAIL.
func lineOf(out, status, check string) string {
	prefix := map[string]string{"ok": "ok   ", "FAIL": "FAIL "}[status] + check
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, " (")) {
			return l
		}
	}
	return ""
}

func TestCheckPassesOnAWorkingConfiguration(t *testing.T) {
	t.Parallel()
	w := newCheckWorld(t)
	out, err := w.run(t)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	for _, want := range []string{"configuration", "database", "schema", "smtp", "openid issuer", `qualtrics "Sales"`} {
		if lineOf(out, "ok", want) == "" {
			t.Errorf("no `ok   %s:` line in\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a check failed:\n%s", out)
	}
	if l := lineOf(out, "ok", "smtp"); !strings.Contains(l, "STARTTLS") || !strings.Contains(l, "logged in as mailer") {
		t.Errorf("the smtp line does not say STARTTLS and login: %q", l)
	}
	if l := lineOf(out, "ok", `qualtrics "Sales"`); !strings.Contains(l, "brand checkbrand") {
		t.Errorf("the qualtrics line does not name the brand /whoami returned: %q", l)
	}
	assertNoSecret(t, out, w)
	t.Logf("\n%s", out)
}

func TestCheckNamesEachProblemOfABrokenConfiguration(t *testing.T) {
	t.Parallel()
	w := newCheckWorld(t)
	// A wrong SMTP password, a schema one version behind, an issuer that
	// does not answer, and a Qualtrics token revoked since it was stored.
	wrongPass := "not-the-relay-pass-99"
	w.env["MICROAPPS_SMTP_URL"] = strings.Replace(w.env["MICROAPPS_SMTP_URL"], checkSMTPPass, wrongPass, 1)
	w.smtpPass = wrongPass
	w.env["MICROAPPS_OIDC_ISSUER"] = "http://" + closedLoopbackAddr(t) + "/realms/staff"
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), w.dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(context.Background(), `UPDATE schema_migrations SET version = $1`, latest-1); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := w.sim.RevokeToken(w.token); err != nil {
		t.Fatal(err)
	}

	out, err := w.run(t)
	if err == nil || !strings.Contains(err.Error(), "4 of ") {
		t.Fatalf("err = %v, want 4 checks failed\n%s", err, out)
	}
	for _, tc := range []struct{ check, want string }{
		{"smtp", "refused the user name and password (535): fix the credentials in MICROAPPS_SMTP_URL"},
		{"schema", "behind"},
		{"schema", "run `microapps migrate up`"},
		{"openid issuer", "check MICROAPPS_OIDC_ISSUER"},
		{`qualtrics "Sales"`, "Qualtrics refused its credential"},
	} {
		if l := lineOf(out, "FAIL", tc.check); !strings.Contains(l, tc.want) {
			t.Errorf("FAIL %s line %q lacks %q\n%s", tc.check, l, tc.want, out)
		}
	}
	for _, still := range []string{"configuration", "database"} {
		if lineOf(out, "ok", still) == "" {
			t.Errorf("%s should still be ok:\n%s", still, out)
		}
	}
	assertNoSecret(t, out, w)
	t.Logf("\n%s", out)
}

func TestCheckReportsEveryConfigurationProblemAndAnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	err := run(context.Background(), []string{"check"}, envOf(map[string]string{
		"MICROAPPS_DATABASE_URL": "postgres://postgres:db-secret-31@" + closedLoopbackAddr(t) + "/microapps?sslmode=disable&connect_timeout=2",
		"MICROAPPS_AUTH_MODE":    "header",
	}), &out)
	if err == nil {
		t.Fatalf("check passed:\n%s", out.String())
	}
	o := out.String()
	if l := lineOf(o, "FAIL", "configuration"); !strings.Contains(l, "MICROAPPS_ENCRYPTION_KEYS") {
		t.Errorf("the missing keys are not named: %q\n%s", l, o)
	}
	if l := lineOf(o, "FAIL", "database"); !strings.Contains(l, "check MICROAPPS_DATABASE_URL") {
		t.Errorf("database line %q\n%s", l, o)
	}
	if strings.Contains(o, "db-secret-31") {
		t.Errorf("the database password was printed:\n%s", o)
	}
	if lineOf(o, "ok", "smtp") == "" || lineOf(o, "ok", "openid issuer") != "" {
		t.Errorf("email off is fine, and header mode has no issuer to check:\n%s", o)
	}
}

func assertNoSecret(t *testing.T, out string, w *checkWorld) {
	t.Helper()
	for _, s := range []string{w.smtpPass, w.token, w.env["MICROAPPS_OIDC_CLIENT_SECRET"], w.env["MICROAPPS_ADMIN_TOKENS"]} {
		if strings.Contains(out, s) {
			t.Errorf("check printed a secret (%d characters)", len(s))
		}
	}
}

func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startIssuer serves an OpenID discovery document on loopback.
func startIssuer(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/keys", "userinfo_endpoint": srv.URL + "/userinfo",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkCA makes a CA and a certificate it signs for 127.0.0.1, and writes
// the CA's PEM to a file (MICROAPPS_SMTP_CA_FILE).
func checkCA(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Check CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// checkRelay is an SMTP relay that offers STARTTLS and AUTH PLAIN over TLS
// only, and refuses every message: check must never send one.
type checkRelay struct{ user, pass string }

func (b *checkRelay) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &checkSession{relay: b, conn: c}, nil
}

type checkSession struct {
	relay *checkRelay
	conn  *smtp.Conn
}

func (s *checkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *checkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, tlsOn := s.conn.TLSConnectionState(); !tlsOn {
			return errors.New("AUTH before STARTTLS")
		}
		if user != s.relay.user || pass != s.relay.pass {
			return smtp.ErrAuthFailed
		}
		return nil
	}), nil
}
func (s *checkSession) Mail(string, *smtp.MailOptions) error {
	return &smtp.SMTPError{Code: 554, Message: "check must not send mail"}
}
func (s *checkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *checkSession) Data(io.Reader) error                 { return nil }
func (s *checkSession) Reset()                               {}
func (s *checkSession) Logout() error                        { return nil }

func startCheckRelay(t *testing.T, cert tls.Certificate, user, pass string) string {
	t.Helper()
	srv := smtp.NewServer(&checkRelay{user: user, pass: pass})
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
