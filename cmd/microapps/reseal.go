package main

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	reseal := func(integrationID, keyID string, sealed []byte) (string, []byte, error) {
		plain, err := kr.Open(keyID, sealed, []byte(integrationID))
		if err != nil {
			return "", nil, err
		}
		return kr.Seal(plain, []byte(integrationID))
	}
	n, err := st.ResealSecrets(ctx, reseal)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-sealed %d secrets with key %q\n", n, kr.Primary())
	// The shared keys of event subscriptions are sealed the same way.
	n, err = st.ResealEventKeys(ctx, reseal)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-sealed %d event keys with key %q\n", n, kr.Primary())
	return nil
}
