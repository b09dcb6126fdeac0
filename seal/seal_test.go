package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/microapps/microapps/seal"
)

func key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func TestParseKeyringRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct{ name, spec, want string }{
		{"an empty spec is refused", "", "no keys"},
		{"a key without id is refused", ":" + key(1), "entry 1"},
		{"a short key says its size", "k1:" + short, `key "k1" is 16 bytes, need 32`},
		{"bad base64 is named", "k1:!!!", `key "k1" is not valid base64`},
		{"a duplicate id is refused", "k1:" + key(1) + ",k1:" + key(2), "appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seal.ParseKeyring(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), key(1)) {
				t.Fatal("error echoes key material")
			}
		})
	}
}

func TestSealOpenRotation(t *testing.T) {
	t.Parallel()
	old, err := seal.ParseKeyring("k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	id, sealed, err := old.Seal([]byte("secret-token"), []byte("integration-a"))
	if err != nil || id != "k1" {
		t.Fatalf("seal: %q %v", id, err)
	}
	if bytes.Contains(sealed, []byte("secret-token")) {
		t.Fatal("plaintext visible in sealed value")
	}

	rotated, err := seal.ParseKeyring("k2:" + key(2) + ",k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Primary() != "k2" {
		t.Fatalf("primary = %s", rotated.Primary())
	}
	plain, err := rotated.Open(id, sealed, []byte("integration-a"))
	if err != nil || string(plain) != "secret-token" {
		t.Fatalf("open with rotated ring: %q %v", plain, err)
	}
	if _, err := rotated.Open(id, sealed, []byte("integration-b")); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("open with another row's id: %v", err)
	}
	if _, err := old.Open("k9", sealed, nil); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := rotated.Open(id, tampered, []byte("integration-a")); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("tampered: %v", err)
	}
}
