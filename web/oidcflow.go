package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// oidcFlow is what the callback needs of the sign-in that GET /signin
// started. It travels in a cookie sealed with AES-256-GCM under a key
// derived from the OIDC client secret, which every replica has, so any
// replica can finish a sign-in another one started and none of them keeps
// anything for a visitor who never comes back (a session row per anonymous
// GET /signin would let anyone fill the table).
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"` // Unix seconds
}

// flowKeyLabel separates this key from any other use of the client secret.
const flowKeyLabel = "microapps oidc sign-in flow cookie v1"

func newFlowAEAD(clientSecret string) cipher.AEAD {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(flowKeyLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

func (o *oidcAuth) sealFlow(f oidcFlow) string {
	plain, _ := json.Marshal(f)
	nonce := make([]byte, o.flow.NonceSize(), o.flow.NonceSize()+len(plain)+o.flow.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(o.flow.Seal(nonce, nonce, plain, []byte(oidcFlowCookie)))
}

var errBadFlow = errors.New("web: sign-in flow cookie is invalid or expired")

// openFlow returns the flow sealed in v when it is intact and not expired.
func (o *oidcAuth) openFlow(v string, now time.Time) (oidcFlow, error) {
	var f oidcFlow
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < o.flow.NonceSize()+o.flow.Overhead() {
		return f, errBadFlow
	}
	plain, err := o.flow.Open(nil, raw[:o.flow.NonceSize()], raw[o.flow.NonceSize():], []byte(oidcFlowCookie))
	if err != nil || json.Unmarshal(plain, &f) != nil || now.Unix() >= f.Expires {
		return oidcFlow{}, errBadFlow
	}
	return f, nil
}
