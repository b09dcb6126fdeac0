package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func TestResealMovesEverySecretToTheFirstKey(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewMigrated(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k2 := "k2:" + base64.StdEncoding.EncodeToString([]byte("abcdefghijklmnopqrstuvwxyz012345"))
	old, _ := seal.ParseKeyring(goodKey)
	ids := []string{uuid.NewString(), uuid.NewString()}
	for i, id := range ids {
		keyID, sealed, err := old.Seal([]byte("token-"+id), []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.CreateIntegration(ctx, store.Integration{ID: id, Name: "I" + string(rune('A'+i)), BaseURL: "https://iad1.qualtrics.com/API/v3/",
			Icon: "clipboard", AuthMethod: "token", SecretSealed: sealed, SecretKeyID: keyID, RequestsPerMinute: 1500,
			RequestTimeoutSeconds: 120, Schedule: microapps.DefaultSchedule, Status: "active"},
			store.AuditEvent{Actor: "test", Action: "create"})
		if err != nil {
			t.Fatal(err)
		}
	}
	// An event key sealed the old way, and a webhook secret (which has had
	// its own associated data all along).
	keyID, sealed, err := old.Seal([]byte("events-key"), []byte(ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetEventsKeyIfMissing(ctx, ids[0], keyID, sealed); err != nil {
		t.Fatal(err)
	}
	keyID, sealed, err = seal.SealSecret(old, seal.WebhookSecret, ids[1], []byte("hook-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetWebhook(ctx, ids[1], store.Webhook{URL: "https://hooks.example.com/x", Format: "json", SecretKeyID: keyID, SecretSealed: sealed},
		store.AuditEvent{Actor: "test", Action: "webhook.set"}); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	err = run(ctx, []string{"reseal"}, envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL,
		"MICROAPPS_ENCRYPTION_KEYS": k2 + "," + goodKey}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `re-sealed 2 secrets with key "k2" (2 from before per-kind associated data)`) ||
		!strings.Contains(out.String(), `re-sealed 1 event keys with key "k2" (1 from before`) ||
		!strings.Contains(out.String(), `re-sealed 1 webhook secrets with key "k2" (0 from before`) {
		t.Fatalf("output %q", out.String())
	}
	// Everything now opens with the new key alone, under its kind's
	// associated data only: not the bare integration id of before.
	onlyNew, _ := seal.ParseKeyring(k2)
	for _, id := range ids {
		in, err := st.GetIntegration(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := onlyNew.Open(in.SecretKeyID, in.SecretSealed, seal.AssociatedData(seal.Credential, id))
		if err != nil || string(plain) != "token-"+id {
			t.Fatalf("after reseal %s opens to %q (%v) with key %s", id, plain, err, in.SecretKeyID)
		}
		if _, err := onlyNew.Open(in.SecretKeyID, in.SecretSealed, []byte(id)); err == nil {
			t.Fatalf("after reseal the credential of %s still opens with the bare integration id", id)
		}
	}
	ek, err := st.GetEventsKey(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := onlyNew.Open(ek.KeyID, ek.Sealed, seal.AssociatedData(seal.EventsKey, ids[0])); err != nil || string(plain) != "events-key" {
		t.Fatalf("event key after reseal: %q %v", plain, err)
	}
	wh, err := st.GetWebhook(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := onlyNew.Open(wh.SecretKeyID, wh.SecretSealed, seal.AssociatedData(seal.WebhookSecret, ids[1])); err != nil || string(plain) != "hook-secret" {
		t.Fatalf("webhook secret after reseal: %q %v", plain, err)
	}
	err = run(ctx, []string{"reseal"}, envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL, "MICROAPPS_ENCRYPTION_KEYS": goodKey}), &out)
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("resealing without the key that sealed should fail clearly: %v", err)
	}
}
