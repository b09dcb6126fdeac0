package notify_test

import (
	"context"
	"testing"

	"github.com/microapps/microapps/notify"
)

// BenchmarkSendThroughATLSRelay sends one email per iteration through a real
// SMTP server on loopback with STARTTLS, AUTH and a private CA: a new
// connection, handshake and login each time, as the mailer works.
func BenchmarkSendThroughATLSRelay(b *testing.B) {
	caFile, cert := testCA(b)
	_, addr := startTLSRelay(b, cert, "mailer", "relay-pass")
	m, err := notify.NewSMTPMailer("smtp://mailer:relay-pass@"+addr, "noreply@example.com", notify.WithSMTPCAFile(caFile))
	if err != nil {
		b.Fatal(err)
	}
	msg := notify.Message{To: "ann@example.com", Subject: "New survey: Pulse", Text: "text", HTML: "<p>html</p>",
		MessageID: "ntf_1@example.com", UnsubscribeURL: "https://surveys.example.com/unsubscribe/t"}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := m.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
