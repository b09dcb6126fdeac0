// Package seal encrypts the secrets microapps keeps at rest (Qualtrics API
// tokens, OAuth client secrets, webhook and event keys) with AES-256-GCM under
// a key ring: the first key seals, every key opens, so keys can rotate.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKey means a sealed value names a key the ring does not hold.
var ErrUnknownKey = errors.New("seal: unknown key id")

// ErrOpen means a sealed value could not be opened: wrong key, wrong
// associated data, or tampered ciphertext.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Keyring holds named AES-256 keys; the first one seals.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
	macs  map[string][]byte // per key: HMAC-SHA256(key, "microapps mac"), for MAC
}

// ParseKeyring reads `id:base64(32 bytes)` entries separated by commas. Error
// messages name the offending key id but never include key material.
func ParseKeyring(spec string) (*Keyring, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("no keys given, need at least one keyid:base64(32 bytes)")
	}
	kr := &Keyring{aeads: map[string]cipher.AEAD{}, macs: map[string][]byte{}}
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		id, b64, ok := strings.Cut(entry, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("entry %d is not keyid:base64", i+1)
		}
		if _, dup := kr.aeads[id]; dup {
			return nil, fmt.Errorf("key %q appears twice", id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("key %q is not valid base64", id)
			}
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("key %q is %d bytes, need 32", id, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("key %q: %v", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %v", id, err)
		}
		kr.ids = append(kr.ids, id)
		kr.aeads[id] = aead
		m := hmac.New(sha256.New, key)
		m.Write([]byte("microapps mac"))
		kr.macs[id] = m.Sum(nil)
	}
	return kr, nil
}

// KeyIDs lists the ring's key ids, the sealing key first.
func (k *Keyring) KeyIDs() []string { return append([]string(nil), k.ids...) }

// Primary is the id of the key that seals.
func (k *Keyring) Primary() string { return k.ids[0] }

// Seal encrypts plaintext with the primary key, binding it to associatedData
// (the owning row's id) so a sealed value copied to another row does not open.
// The result is nonce || ciphertext.
func (k *Keyring) Seal(plaintext, associatedData []byte) (keyID string, sealed []byte, err error) {
	id := k.ids[0]
	aead := k.aeads[id]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return id, aead.Seal(nonce, nonce, plaintext, associatedData), nil
}

// MAC returns HMAC-SHA256 of data under a key derived from the primary key
// for purpose (never the sealing key itself), e.g. to name an admin token in
// the audit trail without a hash anyone could recompute from a guess. The
// value changes when the primary key does.
func (k *Keyring) MAC(purpose string, data []byte) []byte {
	sub := hmac.New(sha256.New, k.macs[k.ids[0]])
	sub.Write([]byte(purpose))
	m := hmac.New(sha256.New, sub.Sum(nil))
	m.Write(data)
	return m.Sum(nil)
}

// Open decrypts a value sealed by any key of the ring.
func (k *Keyring) Open(keyID string, sealed, associatedData []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	if len(sealed) < aead.NonceSize() {
		return nil, ErrOpen
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], associatedData)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
