package seal_test

import (
	"errors"
	"testing"

	"github.com/microapps/microapps/seal"
)

// TestEachKindOfSecretHasItsOwnAssociatedData: a value
// sealed as one kind does not open as another kind of the same owner, and a
// value sealed the old way (the owner id alone) still opens, flagged legacy,
// until it is re-sealed.
func TestEachKindOfSecretHasItsOwnAssociatedData(t *testing.T) {
	t.Parallel()
	kr, err := seal.ParseKeyring("k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	const owner = "6f1c5b1e-8d3a-4c1e-9f3e-2b7a1d0c9e8f"
	kinds := []seal.Kind{seal.Credential, seal.EventsKey, seal.WebhookSecret}
	for _, sealedAs := range kinds {
		id, sealed, err := seal.SealSecret(kr, sealedAs, owner, []byte("s3cret"))
		if err != nil {
			t.Fatal(err)
		}
		for _, openedAs := range kinds {
			plain, legacy, err := seal.OpenSecret(kr, openedAs, owner, id, sealed)
			switch {
			case openedAs == sealedAs && (err != nil || string(plain) != "s3cret" || legacy):
				t.Errorf("%s: %q %v %v", sealedAs, plain, legacy, err)
			case openedAs != sealedAs && !errors.Is(err, seal.ErrOpen):
				t.Errorf("a %s opened as a %s: %q %v", sealedAs, openedAs, plain, err)
			}
		}
		if _, _, err := seal.OpenSecret(kr, sealedAs, "another-owner", id, sealed); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("a %s opened for another owner: %v", sealedAs, err)
		}
	}
	id, old, err := kr.Seal([]byte("before"), []byte(owner))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []seal.Kind{seal.Credential, seal.EventsKey} {
		if plain, legacy, err := seal.OpenSecret(kr, k, owner, id, old); err != nil || !legacy || string(plain) != "before" {
			t.Errorf("a legacy %s: %q %v %v", k, plain, legacy, err)
		}
	}
	if _, _, err := seal.OpenSecret(kr, seal.WebhookSecret, owner, id, old); err == nil {
		t.Errorf("a webhook secret opened with the bare owner id, which it was never sealed with")
	}
	if p, err := seal.OpenCredential(kr, owner, id, old); err != nil || string(p) != "before" {
		t.Errorf("OpenCredential: %q %v", p, err)
	}
}
