package seal

// Kind names a kind of sealed secret. Each kind seals with associated data of
// its own ("<kind>:<owner id>"), so a sealed value copied into another
// column of the same row (an event shared key into the credential, a
// credential into the webhook secret) does not open there, any more than in
// another row.
type Kind string

// The kinds microapps seals.
const (
	// Credential is an integration's Qualtrics API token or OAuth client secret.
	Credential Kind = "qualtrics-credential"
	// EventsKey is the shared key that signs an integration's event callbacks.
	EventsKey Kind = "events-key"
	// WebhookSecret signs an integration's webhook bodies. It has had
	// "webhook:<id>" as associated data since it exists.
	WebhookSecret Kind = "webhook"
)

// AssociatedData is what a secret of kind owned by ownerID is sealed with.
func AssociatedData(kind Kind, ownerID string) []byte { return []byte(string(kind) + ":" + ownerID) }

// legacyAD is what a kind was sealed with before kinds had their own
// associated data: the owner id alone (credentials and event keys). nil when
// the kind never had another.
func legacyAD(kind Kind, ownerID string) []byte {
	if kind == Credential || kind == EventsKey {
		return []byte(ownerID)
	}
	return nil
}

// Sealer seals; *Keyring is one.
type Sealer interface {
	Seal(plaintext, associatedData []byte) (keyID string, sealed []byte, err error)
}

// Opener opens; *Keyring is one.
type Opener interface {
	Open(keyID string, sealed, associatedData []byte) ([]byte, error)
}

// SealSecret seals a secret of kind for ownerID.
func SealSecret(s Sealer, kind Kind, ownerID string, plaintext []byte) (keyID string, sealed []byte, err error) {
	return s.Seal(plaintext, AssociatedData(kind, ownerID))
}

// OpenSecret opens a secret of kind owned by ownerID. A value sealed before
// kinds had their own associated data still opens, and legacy says so, until
// `microapps reseal` has re-sealed it under its kind.
func OpenSecret(o Opener, kind Kind, ownerID, keyID string, sealed []byte) (plain []byte, legacy bool, err error) {
	plain, err = o.Open(keyID, sealed, AssociatedData(kind, ownerID))
	if err == nil {
		return plain, false, nil
	}
	if old := legacyAD(kind, ownerID); old != nil {
		if p, lerr := o.Open(keyID, sealed, old); lerr == nil {
			return p, true, nil
		}
	}
	return nil, false, err
}

// OpenCredential opens an integration's stored Qualtrics credential
// (store.Integration's SecretSealed under SecretKeyID).
func OpenCredential(o Opener, integrationID, keyID string, sealed []byte) ([]byte, error) {
	plain, _, err := OpenSecret(o, Credential, integrationID, keyID, sealed)
	return plain, err
}
