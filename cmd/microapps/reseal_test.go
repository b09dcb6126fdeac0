package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"

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
			RequestTimeoutSeconds: 120, FullSyncEvery: 3600e9, IncrementalSyncEvery: 900e9, Status: "active"},
			store.AuditEvent{Actor: "test", Action: "create"})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out syncBuffer
	err = run(ctx, []string{"reseal"}, envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL,
		"MICROAPPS_ENCRYPTION_KEYS": k2 + "," + goodKey}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `re-sealed 2 secrets with key "k2"`) {
		t.Fatalf("output %q", out.String())
	}
	onlyNew, _ := seal.ParseKeyring(k2)
	for _, id := range ids {
		in, err := st.GetIntegration(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := onlyNew.Open(in.SecretKeyID, in.SecretSealed, []byte(id))
		if err != nil || string(plain) != "token-"+id {
			t.Fatalf("after reseal %s opens to %q (%v) with key %s", id, plain, err, in.SecretKeyID)
		}
	}
	err = run(ctx, []string{"reseal"}, envOf(map[string]string{"MICROAPPS_DATABASE_URL": dbURL, "MICROAPPS_ENCRYPTION_KEYS": goodKey}), &out)
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("resealing without the key that sealed should fail clearly: %v", err)
	}
}
