package replica

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// A replica left on the default public URL refuses to start once an
// integration has a webhook: its chat messages would link to localhost.
func TestDefaultPublicURLIsRefusedWithWebhooks(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewMigrated(t)
	opts := Options{
		DatabaseURL:        dbURL,
		Keyring:            testKeyring(t),
		AuthMode:           "header",
		AuthHeader:         "X-Forwarded-Email",
		TrustedProxies:     []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		PublicURL:          &url.URL{Scheme: "http", Host: "localhost:8080"},
		PublicURLDefaulted: true,
	}
	ctx := context.Background()
	a, err := New(ctx, opts, zap.NewNop())
	if err != nil {
		t.Fatalf("no integration needs the public URL yet: %v", err)
	}
	a.Close()

	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var id string
	if err := st.Pool().QueryRow(ctx, `INSERT INTO integrations (name, functional_group, base_url, secret_sealed, secret_key_id)
		VALUES ('Sales', 'Sales', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := st.SetWebhook(ctx, id, store.Webhook{URL: "https://hooks.example.com/x", Format: "slack"}, store.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if a, err := New(ctx, opts, zap.NewNop()); err == nil {
		a.Close()
		t.Fatal("started on the default public URL with a webhook configured")
	} else if !strings.Contains(err.Error(), "MICROAPPS_PUBLIC_URL is required") {
		t.Fatalf("error %q does not name MICROAPPS_PUBLIC_URL", err)
	}
	opts.PublicURLDefaulted = false
	a, err = New(ctx, opts, zap.NewNop())
	if err != nil {
		t.Fatalf("a configured public URL is refused: %v", err)
	}
	a.Close()
}
