package manage

import (
	"fmt"
	"unicode/utf8"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

func (s *Service) seal(id string, cred credentialChange, in *store.Integration) error {
	secret := cred.secret
	if cred.method == microapps.AuthOAuth {
		secret = cred.oauth.ClientSecret
	}
	keyID, sealed, err := seal.SealSecret(s.o.Keyring, seal.Credential, id, []byte(secret))
	if err != nil {
		return err
	}
	in.AuthMethod = cred.method
	in.SecretSealed, in.SecretKeyID, in.SecretHint = sealed, keyID, cred.hint()
	in.OAuthClientID, in.OAuthScope = "", ""
	if cred.method == microapps.AuthOAuth {
		in.OAuthClientID, in.OAuthScope = cred.oauth.ClientID, cred.oauth.Scope
	}
	return nil
}

// storeCredential seals a verified credential into in. A new credential is the
// fix an integration in error asked for, so its scheduling resumes.
func (s *Service) storeCredential(in *store.Integration, cred credentialChange) error {
	if err := s.seal(in.ID, cred, in); err != nil {
		return err
	}
	if in.Status == microapps.IntegrationError {
		in.Status, in.StatusMessage = microapps.IntegrationActive, ""
	}
	return nil
}

func applyIdentity(in *store.Integration, v verified) {
	in.BaseURL = v.baseURL
	in.BrandID, in.Datacenter, in.AccountType, in.QualtricsUserID = v.who.BrandID, v.who.Datacenter, v.who.AccountType, v.who.UserID
}

// credentialChange is what a request asks to change about the credential.
type credentialChange struct {
	method microapps.AuthMethod
	secret string
	oauth  qualtrics.OAuthConfig
}

func (c credentialChange) auth() qualtrics.Auth {
	if c.method == microapps.AuthOAuth {
		o := c.oauth
		return qualtrics.Auth{OAuth: &o}
	}
	return qualtrics.Auth{Token: c.secret}
}

func (c credentialChange) hint() string {
	s := c.secret
	if c.method == microapps.AuthOAuth {
		s = c.oauth.ClientSecret
	}
	if utf8.RuneCountInString(s) <= 8 {
		return "…" // too short to show any of it safely
	}
	r := []rune(s)
	return "…" + string(r[len(r)-4:])
}

// field is the form field a verdict on this credential concerns.
func (c credentialChange) field() string {
	if c.method == microapps.AuthOAuth {
		return "oauth.clientSecret"
	}
	return "token"
}

// storedCredential opens the integration's sealed credential.
func (s *Service) storedCredential(in store.Integration) (credentialChange, error) {
	plain, err := seal.OpenCredential(s.o.Keyring, in.ID, in.SecretKeyID, in.SecretSealed)
	if err != nil {
		return credentialChange{}, fmt.Errorf("open stored credential of %s: %w", in.ID, err)
	}
	c := credentialChange{method: in.AuthMethod, secret: string(plain)}
	if in.AuthMethod == microapps.AuthOAuth {
		c.oauth = qualtrics.OAuthConfig{ClientID: in.OAuthClientID, ClientSecret: string(plain), Scope: in.OAuthScope}
	}
	return c, nil
}
