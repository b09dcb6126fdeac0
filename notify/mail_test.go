package notify_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/store"
)

type smtpMessage struct {
	from string
	to   []string
	data []byte
}

// smtpBackend is a real SMTP server's backend that keeps what it receives.
type smtpBackend struct {
	mu   sync.Mutex
	msgs []smtpMessage
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct {
	b   *smtpBackend
	cur smtpMessage
}

func (s *smtpSession) Reset()        { s.cur = smtpMessage{} }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T) (*smtpBackend, string) {
	t.Helper()
	be := &smtpBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return be, ln.Addr().String()
}

// parts returns the decoded text/plain and text/html parts of a
// multipart/alternative message.
func parts(t *testing.T, msg *mail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by NextPart
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case "text/html":
			html = string(b)
		}
	}
	return text, html
}

func TestEmailIsSentOverSMTPWithTextAndHTML(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	be, addr := startSMTP(t)
	mailer, err := notify.NewSMTPMailer("smtp://"+addr+"?tls=none", "Microapps <noreply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	public, _ := url.Parse("https://surveys.example.com/")
	n := notify.New(notify.Options{Store: f.s, Mailer: mailer, PublicURL: public, Jobs: insertOnlyRiver(t, f.s)})

	integ := f.integration(integrationRow{Admins: []string{"boss@example.com"}, BrandBaseURL: "https://acme.qualtrics.com"})
	f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse <Q1>"})
	f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1", LinkExpiration: at(200 * h)})
	f.dist(integ, distRow{ID: "EMD_2", SurveyID: "SV_1", LinkExpiration: at(20 * h), Sent: 8, Finished: 2})
	respond := "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_CHL=email&Q_DL=EMD_1_CID_1"
	f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", Link: respond})

	if raised := onChanges(t, f, n, integ, []store.Change{delivered("EMD_1", "CID_1")}, t0); raised != 1 {
		t.Fatalf("raised %d", raised)
	}
	if raised, err := n.CheckWindows(f.ctx, integ, t0); err != nil || raised != 1 {
		t.Fatalf("statistics raised %d, %v", raised, err)
	}
	for _, id := range deliveryIDs(f, "email") {
		if err := n.Deliver(f.ctx, id, false, t0); err != nil {
			t.Fatal(err)
		}
	}
	if c := f.count(`SELECT count(*) FROM deliveries WHERE status = 'sent' AND attempts = 1 AND delivered_at IS NOT NULL`); c != 2 {
		t.Fatalf("%d deliveries sent, want 2", c)
	}

	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 2 {
		t.Fatalf("%d messages received, want 2", len(be.msgs))
	}
	cases := []struct {
		name, to, subject, button, link string
		body                            []string
	}{
		{
			name: "new survey to the recipient", to: "ann@example.com", subject: "New survey: Pulse <Q1>",
			button: "Respond to survey in Qualtrics", link: respond,
			body: []string{"You have received a new survey request: Pulse <Q1>, due on 10 Mar 2026, 20:00 UTC."},
		},
		{
			name: "statistics to the Brand Admin", to: "boss@example.com", subject: "Survey statistics: Pulse <Q1> (sent 27 Feb 2026)",
			button: "Review distributions", link: "https://acme.qualtrics.com/Q/MyProjectsSection",
			body: []string{"2 of 8 completed (25.0% response rate)", "The link expires on 3 Mar 2026, 08:00 UTC."},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := be.msgs[i]
			if m.from != "noreply@example.com" || len(m.to) != 1 || m.to[0] != tc.to {
				t.Fatalf("envelope from %q to %q", m.from, m.to)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(m.data))
			if err != nil {
				t.Fatal(err)
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || subject != tc.subject {
				t.Fatalf("subject %q (%v), want %q", subject, err, tc.subject)
			}
			if to := msg.Header.Get("To"); !strings.Contains(to, tc.to) {
				t.Fatalf("To: %q", to)
			}
			if id := msg.Header.Get("Message-Id"); !strings.HasPrefix(id, "<ntf_") || !strings.HasSuffix(id, "@surveys.example.com>") {
				t.Fatalf("Message-Id %q", id)
			}
			text, html := parts(t, msg)
			for _, want := range append(tc.body, tc.button+":\n"+tc.link, "https://surveys.example.com/notifications") {
				if !strings.Contains(text, want) {
					t.Errorf("text part lacks %q:\n%s", want, text)
				}
			}
			escaped := strings.ReplaceAll(tc.link, "&", "&amp;")
			for _, want := range []string{`href="` + escaped + `"`, ">" + tc.button + "</a>",
				`href="https://surveys.example.com/notifications"`, "Pulse &lt;Q1&gt;"} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML part lacks %q:\n%s", want, html)
				}
			}
			if strings.Contains(html, "Pulse <Q1>") {
				t.Error("the survey name is not escaped in the HTML part")
			}
		})
	}
}

func TestEmailIsSkippedWithoutMailer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	withMail := notify.New(notify.Options{Store: f.s, Mailer: &fakeMailer{}, Jobs: insertOnlyRiver(t, f.s)})
	expiringWorld(f, integrationRow{})
	if raised, err := withMail.CheckWindows(f.ctx, "", t0); err != nil || raised != 1 {
		t.Fatalf("raised %d, %v", raised, err)
	}
	// The replica that works the job has no SMTP configured.
	without := notify.New(notify.Options{Store: f.s})
	id := deliveryIDs(f, "email")[0]
	if err := without.Deliver(f.ctx, id, false, t0); err != nil {
		t.Fatal(err)
	}
	if c := f.count(`SELECT count(*) FROM deliveries WHERE status = 'skipped' AND last_error = 'email is not configured'`); c != 1 {
		t.Fatal("the email delivery was not skipped")
	}
}

func TestEmailTemporaryFailureIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := &fakeMailer{failures: 1}
	n := notify.New(notify.Options{Store: f.s, Mailer: m, Language: "fr", Jobs: insertOnlyRiver(t, f.s)})
	expiringWorld(f, integrationRow{})
	if _, err := n.CheckWindows(f.ctx, "", t0); err != nil {
		t.Fatal(err)
	}
	id := deliveryIDs(f, "email")[0]
	if err := n.Deliver(f.ctx, id, false, t0); err == nil {
		t.Fatal("a temporary failure returned no error, River would not retry")
	}
	if err := n.Deliver(f.ctx, id, false, t0); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 || m.sent[0].Subject != "Enquête bientôt expirée\u00a0: Pulse" ||
		!strings.Contains(m.sent[0].Text, "Répondre à l’enquête dans Qualtrics") {
		t.Fatalf("sent %+v", m.sent)
	}
	if c := f.count(`SELECT count(*) FROM deliveries WHERE id = $1 AND status = 'sent' AND attempts = 2 AND last_error = ''`, id); c != 1 {
		t.Fatal("the delivery does not show two attempts and success")
	}
}

func TestNewSMTPMailer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, from string
		ok        bool
	}{
		{"smtp://mail.example.com", "noreply@example.com", true},
		{"smtp://user:pass@mail.example.com:2525", "Microapps <noreply@example.com>", true},
		{"smtps://user:pass@mail.example.com", "noreply@example.com", true},
		{"smtp://127.0.0.1:25?tls=none", "noreply@example.com", true},
		{"smtp://127.0.0.1:25?tls=sometimes", "noreply@example.com", false},
		{"smtps://mail.example.com?tls=none", "noreply@example.com", false},
		{"http://mail.example.com", "noreply@example.com", false},
		{"smtp://", "noreply@example.com", false},
		{"smtp://mail.example.com:99999", "noreply@example.com", false},
		{"smtp://mail.example.com", "not an address", false},
	} {
		_, err := notify.NewSMTPMailer(tc.url, tc.from)
		if (err == nil) != tc.ok {
			t.Errorf("NewSMTPMailer(%q, %q) error %v, want ok=%v", tc.url, tc.from, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("error %q shows the password", err)
		}
	}
}
