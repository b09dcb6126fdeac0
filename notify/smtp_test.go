package notify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/riverqueue/river/rivertype"

	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/web"
)

// testCA makes a CA and a certificate it signs for 127.0.0.1, and writes the
// CA's PEM to a file, as a company's private relay would have.
func testCA(t testing.TB) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Company CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "company-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

// authBackend is a relay that offers STARTTLS, insists on AUTH PLAIN over TLS
// and keeps what it receives.
type authBackend struct {
	smtpBackend
	user, pass string
	authFails  int // AUTH attempts, for the 535 test
}

func (b *authBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &authSession{smtpSession: smtpSession{b: &b.smtpBackend}, be: b, conn: c}, nil
}

type authSession struct {
	smtpSession
	be     *authBackend
	conn   *smtp.Conn
	authed bool
}

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, tlsOn := s.conn.TLSConnectionState(); !tlsOn {
			return errors.New("AUTH before STARTTLS")
		}
		if user != s.be.user || pass != s.be.pass {
			s.be.mu.Lock()
			s.be.authFails++
			s.be.mu.Unlock()
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *authSession) Mail(from string, o *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return s.smtpSession.Mail(from, o)
}

func startTLSRelay(t testing.TB, cert tls.Certificate, user, pass string) (*authBackend, string) {
	t.Helper()
	be := &authBackend{user: user, pass: pass}
	srv := smtp.NewServer(be)
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return be, ln.Addr().String()
}

func header(t *testing.T, msg *mail.Message, name string) string {
	t.Helper()
	v, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestEmailThroughAPrivateRelay sends every kind of email through a real SMTP
// server with STARTTLS and AUTH on a company CA, trusted through
// MICROAPPS_SMTP_CA_FILE only, and checks who gets what.
func TestEmailThroughAPrivateRelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	caFile, cert := testCA(t)
	be, addr := startTLSRelay(t, cert, "mailer", "relay-pass-123")
	public, _ := url.Parse("https://surveys.example.com/")
	relayURL := "smtp://mailer:relay-pass-123@" + addr

	integ := f.integration(integrationRow{Admins: []string{"boss@example.com"}, BrandBaseURL: "https://acme.qualtrics.com",
		DeepLinks: map[string]string{"reviewDistributions": "{scheme}://{host}/Q/Review/{surveyId}/{distributionId}"}})
	f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse"})
	f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1", LinkExpiration: at(200 * h)})
	f.dist(integ, distRow{ID: "EMD_2", SurveyID: "SV_1", LinkExpiration: at(20 * h), Sent: 8, Finished: 2})
	for _, r := range []recipRow{
		{Dist: "EMD_1", Contact: "CID_1", Email: "ann@example.com"},  // French, by her browser
		{Dist: "EMD_2", Contact: "CID_2", Email: "carl@example.com"}, // unsubscribed in Qualtrics
		{Dist: "EMD_2", Contact: "CID_3", Email: "dora@example.com"}, // turned email off
		{Dist: "EMD_2", Contact: "CID_4", Email: "eve@example.com"},  // English, never signed in
	} {
		r.Survey = "SV_1"
		if r.Dist == "EMD_2" {
			r.LinkExpiration = at(20 * h)
		}
		f.recip(integ, r)
	}
	f.exec(`UPDATE recipients SET unsubscribed = true WHERE email = 'carl@example.com'`)
	if err := f.s.RememberUserLocale(f.ctx, "ann@example.com", "fr", "Europe/Paris", t0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetEmailOff(f.ctx, "dora@example.com", true, t0); err != nil {
		t.Fatal(err)
	}

	// Without the CA file the relay's certificate is refused.
	plain, err := notify.NewSMTPMailer(relayURL, "Microapps <noreply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	err = plain.Send(f.ctx, notify.Message{To: "x@example.com", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA file: %v, want a certificate error", err)
	}
	if strings.Contains(err.Error(), "relay-pass-123") {
		t.Fatal("the error shows the password")
	}

	mailer, err := notify.NewSMTPMailer(relayURL, "Microapps <noreply@example.com>", notify.WithSMTPCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	n := notify.New(notify.Options{Store: f.s, Mailer: mailer, PublicURL: public, Jobs: insertOnlyRiver(t, f.s)})
	if raised := onChanges(t, f, n, integ, []store.Change{delivered("EMD_1", "CID_1")}, t0); raised != 1 {
		t.Fatalf("new_survey raised %d", raised)
	}
	if raised, err := n.CheckWindows(f.ctx, integ, t0); err != nil || raised != 4 {
		t.Fatalf("raised %d, %v; want 3 expiring and 1 statistics", raised, err)
	}
	for _, id := range deliveryIDs(f, "email") {
		if err := n.Deliver(f.ctx, id, false, t0); err != nil {
			t.Fatal(err)
		}
	}
	skipped := map[string]string{}
	rows, _ := f.s.Pool().Query(f.ctx, `SELECT n.email, d.last_error FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.status = 'skipped'`)
	for rows.Next() {
		var e, why string
		_ = rows.Scan(&e, &why)
		skipped[e] = why
	}
	if len(skipped) != 2 || skipped["carl@example.com"] != "the recipient unsubscribed in Qualtrics" ||
		skipped["dora@example.com"] != "the user turned email notifications off" {
		t.Fatalf("skipped %v", skipped)
	}
	if c := f.count(`SELECT count(*) FROM notifications WHERE email IN ('carl@example.com', 'dora@example.com')`); c != 2 {
		t.Fatalf("%d feed items for carl and dora, want 2: the feed is not affected", c)
	}

	be.mu.Lock()
	msgs := append([]smtpMessage(nil), be.msgs...)
	be.mu.Unlock()
	raw := map[string][]byte{}
	for _, m := range msgs {
		if len(m.to) != 1 || raw[m.to[0]] != nil {
			t.Fatalf("envelope to %v (duplicate or several)", m.to)
		}
		raw[m.to[0]] = m.data
		if bytes.Contains(m.data, []byte("relay-pass-123")) {
			t.Fatal("a message carries the relay password")
		}
	}
	if len(raw) != 3 || raw["ann@example.com"] == nil || raw["eve@example.com"] == nil || raw["boss@example.com"] == nil {
		t.Fatalf("emails to %v, want ann, eve and boss", keysOfMap(raw))
	}
	// Each look at a message parses it anew (a body reads once).
	msgOf := func(to string) *mail.Message {
		msg, err := mail.ReadMessage(bytes.NewReader(raw[to]))
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	// The one-click https address only (issue 31, item 4: the mailto
	// variant mailed the token to a mailbox nothing reads).
	tokenRE := regexp.MustCompile(`^<https://surveys\.example\.com/unsubscribe/([A-Za-z0-9_-]{43})>$`)
	for to := range raw {
		t.Run("headers to "+to, func(t *testing.T) {
			msg := msgOf(to)
			lu := msg.Header.Get("List-Unsubscribe")
			m := tokenRE.FindStringSubmatch(lu)
			if m == nil {
				t.Fatalf("List-Unsubscribe %q", lu)
			}
			if owner, err := f.s.EmailOfToken(f.ctx, m[1], t0); err != nil || owner != to {
				t.Fatalf("the token is %q's (%v), not %s's", owner, err, to)
			}
			for name, want := range map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
				"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"} {
				if got := msg.Header.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			for _, name := range []string{"X-Mailer", "User-Agent"} {
				if v := msg.Header.Get(name); v != "" {
					t.Errorf("%s: %q names the mail library", name, v)
				}
			}
			text, html := parts(t, msgOf(to))
			keepSample(t, "email-"+strings.Split(to, "@")[0]+".html", []byte(html))
			if !strings.Contains(html, "<body>") || strings.Contains(html, "max-width") || strings.Contains(html, "margin:0 auto") {
				t.Error("the HTML relies on <body> styles or max-width centring, which Outlook drops")
			}
			if !strings.Contains(html, `<table role="presentation" width="100%"`) || !strings.Contains(html, `width="560"`) {
				t.Error("the HTML has no wrapper table of fixed width")
			}
			if !strings.Contains(text, "https://surveys.example.com/settings/notifications") ||
				!strings.Contains(html, `href="https://surveys.example.com/settings/notifications"`) {
				t.Error("no link to the email settings page in the footer")
			}
		})
	}

	if s := header(t, msgOf("ann@example.com"), "Subject"); s != "Nouvelle enquête\u00a0: Pulse" {
		t.Errorf("ann's subject %q, want French", s)
	}
	if text, _ := parts(t, msgOf("ann@example.com")); !strings.Contains(text, "à remplir avant le 10 mars 2026, 21:00 CET") ||
		!strings.Contains(text, "Répondre à l’enquête dans Qualtrics:") {
		t.Errorf("ann's email is not French in her zone:\n%s", text)
	}
	if _, html := parts(t, msgOf("ann@example.com")); !strings.Contains(html, `<html lang="fr">`) {
		t.Error("ann's HTML is not marked French")
	}
	if s := header(t, msgOf("eve@example.com"), "Subject"); s != "Survey about to expire: Pulse" {
		t.Errorf("eve's subject %q", s)
	}

	// The statistics email's subject has the send date, and its "Review
	// distributions" link is the one the Distribution data page shows.
	if s := header(t, msgOf("boss@example.com"), "Subject"); s != "Survey statistics: Pulse (sent 27 Feb 2026)" {
		t.Errorf("statistics subject %q", s)
	}
	_, html := parts(t, msgOf("boss@example.com"))
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatal(err)
	}
	emailLink, _ := doc.Find(`[data-testid="email-button"]`).Attr("href")
	dataLink, _ := doc.Find(`[data-testid="email-page-link"]`).Attr("href")
	srv, err := web.New(web.Options{Store: f.s, AuthMode: web.AuthHeader, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	pagePath := strings.TrimPrefix(dataLink, "https://surveys.example.com")
	req := httptest.NewRequest(http.MethodGet, pagePath, nil)
	req.Header.Set("X-Forwarded-Email", "boss@example.com")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("the email's Distribution data link %s: %d", dataLink, rec.Code)
	}
	page, _ := goquery.NewDocumentFromReader(rec.Body)
	pageLink, _ := page.Find(`[data-testid="review-distributions-link"]`).Attr("href")
	if emailLink == "" || emailLink != pageLink || emailLink != "https://acme.qualtrics.com/Q/Review/SV_1/EMD_2" {
		t.Fatalf("email's review link %q, page's %q", emailLink, pageLink)
	}
}

func keysOfMap[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBadSMTPCredentialsFailFast: a 535 is final for the delivery, which
// says why, instead of being retried for hours.
func TestBadSMTPCredentialsFailFast(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	caFile, cert := testCA(t)
	be, addr := startTLSRelay(t, cert, "mailer", "the-right-one")
	mailer, err := notify.NewSMTPMailer("smtp://mailer:wrong-pass-987@"+addr, "noreply@example.com", notify.WithSMTPCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	n := notify.New(notify.Options{Store: f.s, Mailer: mailer, Jobs: insertOnlyRiver(t, f.s)})
	expiringWorld(f, integrationRow{})
	if _, err := n.CheckWindows(f.ctx, "", t0); err != nil {
		t.Fatal(err)
	}
	id := deliveryIDs(f, "email")[0]
	err = n.Deliver(f.ctx, id, false, t0)
	var cancel *rivertype.JobCancelError
	if !errors.As(err, &cancel) {
		t.Fatalf("error %v, want the job cancelled", err)
	}
	var status, lastError string
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT status, last_error FROM deliveries WHERE id = $1`, id).Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !strings.Contains(lastError, "535") || !strings.Contains(lastError, "MICROAPPS_SMTP_URL") ||
		strings.Contains(lastError, "wrong-pass-987") {
		t.Fatalf("status %s, last error %q", status, lastError)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.authFails != 1 || len(be.msgs) != 0 {
		t.Fatalf("%d AUTH attempts, %d messages", be.authFails, len(be.msgs))
	}
}
