package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func TestWebhookSettingsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	var id string
	if err := s.Pool().QueryRow(ctx, `INSERT INTO integrations (name, base_url, secret_sealed, secret_key_id)
		VALUES ('x', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	w, err := s.GetWebhook(ctx, id)
	if err != nil || w.URL != "" || w.Format != "json" || w.SecretSealed != nil {
		t.Fatalf("a new integration's webhook: %+v, %v", w, err)
	}
	set := store.Webhook{URL: "https://hooks.example.com/x", SecretSealed: []byte{1, 2, 3}, SecretKeyID: "k1", Format: "slack"}
	if err := s.SetWebhook(ctx, id, set, store.AuditEvent{Actor: "test", Action: "webhook.set"}); err != nil {
		t.Fatal(err)
	}
	w, err = s.GetWebhook(ctx, id)
	if err != nil || w.URL != set.URL || w.Format != "slack" || string(w.SecretSealed) != "\x01\x02\x03" || w.SecretKeyID != "k1" {
		t.Fatalf("after set: %+v, %v", w, err)
	}
	var audits int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'webhook.set' AND integration_id = $1`, id).Scan(&audits); err != nil || audits != 1 {
		t.Fatalf("%d audit events (%v)", audits, err)
	}

	if err := s.SetWebhook(ctx, id, store.Webhook{}, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if w, _ = s.GetWebhook(ctx, id); w.URL != "" || w.SecretSealed != nil || w.SecretKeyID != "" || w.Format != "json" {
		t.Fatalf("after clearing: %+v", w)
	}

	if err := s.SetWebhook(ctx, id, store.Webhook{URL: "https://x", Format: "xml"}, store.AuditEvent{}); err == nil {
		t.Fatal("an unknown format was accepted")
	}
	if err := s.SetWebhook(ctx, "00000000-0000-0000-0000-000000000000", store.Webhook{}, store.AuditEvent{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown integration: %v", err)
	}
	if _, err := s.GetWebhook(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
	if list, err := s.ListDeliveries(ctx, id, 10); err != nil || len(list) != 0 {
		t.Fatalf("deliveries of a new integration: %v, %v", list, err)
	}
}
