package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/store"
)

// Message is one email: a text and an HTML alternative of the same content.
type Message struct {
	To        string
	Subject   string
	Text      string
	HTML      string
	MessageID string // without angle brackets; the same on every retry
	// UnsubscribeURL is the addressee's one-click unsubscribe address
	// (RFC 8058) for this email; the mailer puts it in List-Unsubscribe.
	UnsubscribeURL string
}

// Mailer sends email.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

func (n *Notifier) emailMessage(ctx context.Context, w store.DeliveryWork, now time.Time) (Message, error) {
	t, err := n.compose(w, n.readerOf(w))
	if err != nil {
		return Message{}, &permanentError{err}
	}
	token, err := n.o.Store.UnsubscribeToken(ctx, w.Notification.Email, now)
	if err != nil {
		return Message{}, err
	}
	var html bytes.Buffer
	if err := emailHTML(t).Render(context.Background(), &html); err != nil {
		return Message{}, &permanentError{fmt.Errorf("render email: %w", err)}
	}
	host := n.o.PublicURL.Hostname()
	if host == "" {
		host = "microapps.invalid"
	}
	return Message{
		To:        w.Notification.Email,
		Subject:   t.Subject,
		Text:      t.plain(),
		HTML:      html.String(),
		MessageID: w.Delivery.IdempotencyKey + "@" + host,

		UnsubscribeURL: links.Absolute(n.o.PublicURL, links.Unsubscribe(token)),
	}, nil
}

// SMTPMailer sends email over SMTP with go-mail.
type SMTPMailer struct {
	host     string
	port     int
	ssl      bool
	policy   gomail.TLSPolicy
	user     string
	password string
	from     string
	timeout  time.Duration
	tls      *tls.Config // nil: go-mail's default (system roots)
}

// SMTPOption configures an SMTPMailer.
type SMTPOption func(*SMTPMailer) error

// WithSMTPCAFile trusts the CA certificates of a PEM file, on top of the
// system's, for the SMTP relay only (MICROAPPS_SMTP_CA_FILE): a relay with a
// company CA, without touching what HTTPS to Qualtrics trusts.
func WithSMTPCAFile(path string) SMTPOption {
	return func(m *SMTPMailer) error {
		if path == "" {
			return nil
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("notify: SMTP CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("notify: SMTP CA file %s holds no PEM certificate", path)
		}
		m.tls = &tls.Config{ServerName: m.host, RootCAs: pool, MinVersion: tls.VersionTLS12}
		return nil
	}
}

// NewSMTPMailer builds a mailer from MICROAPPS_SMTP_URL and
// MICROAPPS_MAIL_FROM:
//
//	smtp://[user:password@]host[:port][?tls=mandatory|opportunistic|none]
//	smtps://[user:password@]host[:port]
//
// smtp uses STARTTLS (port 587 by default): mandatory when credentials are
// given, so they never cross the network in the clear, opportunistic
// otherwise; tls=none is for a relay on loopback. smtps is TLS from the first
// byte (port 465 by default). Error messages never include the password.
func NewSMTPMailer(rawURL, from string, opts ...SMTPOption) (Mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("notify: SMTP URL is not a valid URL")
	}
	m := &SMTPMailer{host: u.Hostname(), timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		m.port = 587
	case "smtps":
		m.port, m.ssl = 465, true
	default:
		return nil, fmt.Errorf("notify: SMTP URL scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if m.host == "" {
		return nil, errors.New("notify: SMTP URL has no host")
	}
	if p := u.Port(); p != "" {
		if m.port, err = strconv.Atoi(p); err != nil || m.port <= 0 || m.port > 65535 {
			return nil, fmt.Errorf("notify: SMTP URL port %q is not valid", p)
		}
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	m.policy = gomail.TLSOpportunistic
	if m.user != "" {
		m.policy = gomail.TLSMandatory
	}
	switch tlsMode := u.Query().Get("tls"); tlsMode {
	case "":
	case "mandatory":
		m.policy = gomail.TLSMandatory
	case "opportunistic":
		m.policy = gomail.TLSOpportunistic
	case "none":
		m.policy = gomail.NoTLS
	default:
		return nil, fmt.Errorf("notify: SMTP URL tls=%q, want mandatory, opportunistic or none", tlsMode)
	}
	if m.ssl && u.Query().Get("tls") != "" {
		return nil, errors.New("notify: smtps URLs take no tls parameter (TLS is always on)")
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("notify: mail from %q is not an email address", from)
	}
	m.from = from
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Send sends one message; a new connection per message keeps the mailer
// safe to use from several workers at once.
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	// No User-Agent or X-Mailer naming the library and its version.
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := gm.From(m.from); err != nil {
		return &permanentError{fmt.Errorf("mail from: %w", err)}
	}
	if err := gm.To(msg.To); err != nil {
		return &permanentError{fmt.Errorf("mail to: %w", err)}
	}
	gm.Subject(msg.Subject)
	gm.SetDate()
	if msg.MessageID != "" {
		gm.SetMessageIDWithValue(msg.MessageID)
	} else {
		gm.SetMessageID()
	}
	// Automatic mail (RFC 3834): auto-responders and Exchange must not answer.
	gm.SetGenHeader("Auto-Submitted", "auto-generated")
	gm.SetGenHeader("X-Auto-Response-Suppress", "All")
	if msg.UnsubscribeURL != "" {
		// The one-click https address alone (RFC 8058). No mailto: nothing
		// reads the sender's mailbox, and it would carry the token there.
		gm.SetGenHeaderPreformatted(gomail.HeaderListUnsubscribe, "<"+msg.UnsubscribeURL+">")
		gm.SetGenHeaderPreformatted(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)

	opts := []gomail.Option{gomail.WithPort(m.port), gomail.WithTimeout(m.timeout), gomail.WithTLSPolicy(m.policy)}
	if m.ssl {
		opts = append(opts, gomail.WithSSL())
	}
	if m.tls != nil {
		opts = append(opts, gomail.WithTLSConfig(m.tls))
	}
	if m.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.user), gomail.WithPassword(m.password))
	}
	c, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code == 535 {
			// Bad credentials stay bad until someone changes them: retrying
			// for hours would only lock the account.
			return &permanentError{fmt.Errorf("smtp: the relay refused the user name and password of MICROAPPS_SMTP_URL (535): %w", err)}
		}
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600 &&
			strings.Contains(se.Error(), "recipient") {
			return &permanentError{fmt.Errorf("smtp: %w", err)}
		}
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}
