package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// runReseal re-seals every stored secret with the first key of
// MICROAPPS_ENCRYPTION_KEYS, so an old key can then be removed from the ring.
func runReseal(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return errors.New("reseal takes no arguments")
	}
	cfg, err := loadConfig(getenv, useReseal)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{AppName: "microapps-reseal"})
	if err != nil {
		return err
	}
	defer st.Close()
	kr := cfg.Keyring
	// Each kind of secret is re-sealed under its own associated data
	// (seal.Kind); values sealed before kinds had their own open the old way
	// once more here and are counted.
	for _, k := range []struct {
		kind   seal.Kind
		what   string
		reseal func(context.Context, func(string, string, []byte) (string, []byte, error)) (int, error)
	}{
		{seal.Credential, "secrets", st.ResealSecrets},
		{seal.EventsKey, "event keys", st.ResealEventKeys},
		{seal.WebhookSecret, "webhook secrets", st.ResealWebhookSecrets},
	} {
		legacy := 0
		n, err := k.reseal(ctx, func(integrationID, keyID string, sealed []byte) (string, []byte, error) {
			plain, old, err := seal.OpenSecret(kr, k.kind, integrationID, keyID, sealed)
			if err != nil {
				return "", nil, err
			}
			if old {
				legacy++
			}
			return seal.SealSecret(kr, k.kind, integrationID, plain)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-sealed %d %s with key %q (%d from before per-kind associated data)\n", n, k.what, kr.Primary(), legacy)
	}
	return nil
}
