package replica

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
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

// The first sync with a survey learns the brand's web host from a survey
// definition, so deep links use it rather than the API host.
func TestBrandBaseURLIsFilledFromASurveyDefinition(t *testing.T) {
	t.Parallel()
	brand := qualtricssim.Generate(7, qualtricssim.Spec{BrandID: "acme", Surveys: 2, Recipients: 5})
	sim := httptest.NewServer(qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Seed: 7,
		Limits: &qualtricssim.Limits{Disabled: true}}))
	t.Cleanup(sim.Close)
	ctx := context.Background()
	a, err := New(ctx, Options{DatabaseURL: storetest.NewMigrated(t), Keyring: testKeyring(t), AuthMode: "header",
		AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		PublicURL: &url.URL{Scheme: "https", Host: "surveys.example.com"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var id string
	if err := a.store.Pool().QueryRow(ctx, `INSERT INTO integrations (name, functional_group, base_url, secret_sealed, secret_key_id)
		VALUES ('Sales', 'Sales', $1, '\x00', 'k1') RETURNING id`, sim.URL+"/API/v3/").Scan(&id); err != nil {
		t.Fatal(err)
	}
	client, err := qualtrics.New(qualtrics.Config{BaseURL: sim.URL + "/API/v3/", AllowedHosts: []string{"127.0.0.1"},
		Auth: qualtrics.Auth{Token: brand.Users[0].Tokens[0]}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := a.store.GetIntegration(ctx, id)
	if err := a.fillBrandBaseURL(ctx, in, client); err != nil {
		t.Fatalf("with no survey yet: %v", err)
	}
	if _, err := a.store.Pool().Exec(ctx, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, $2, 'S', true)`,
		id, brand.Surveys[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := a.fillBrandBaseURL(ctx, in, client); err != nil {
		t.Fatal(err)
	}
	in, _ = a.store.GetIntegration(ctx, id)
	if in.BrandBaseURL != "https://acme.qualtrics.com" {
		t.Fatalf("brand base URL %q", in.BrandBaseURL)
	}
}
