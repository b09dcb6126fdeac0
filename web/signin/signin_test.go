package signin_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/microapps/microapps/web/signin"
)

func TestTheFlowCookieOpensOnlyIntactAndInTime(t *testing.T) {
	t.Parallel()
	public, _ := url.Parse("https://surveys.example.com")
	o := signin.New(signin.Config{Issuer: "https://login.example.com", ClientID: "app", ClientSecret: "s3cret", PublicURL: public})
	other := signin.New(signin.Config{Issuer: "https://login.example.com", ClientID: "app", ClientSecret: "another", PublicURL: public})
	now := time.Unix(1_800_000_000, 0)
	f := signin.Flow{State: signin.RandomToken(), Nonce: signin.RandomToken(), Verifier: "v", Next: "/admin/surveys",
		Expires: now.Add(signin.FlowLifetime).Unix()}
	sealed := o.SealFlow(f)
	if got, err := o.OpenFlow(sealed, now); err != nil || got != f {
		t.Fatalf("OpenFlow = %+v, %v", got, err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	for name, open := range map[string]func() (signin.Flow, error){
		"expired":                               func() (signin.Flow, error) { return o.OpenFlow(sealed, now.Add(signin.FlowLifetime)) },
		"tampered":                              func() (signin.Flow, error) { return o.OpenFlow(string(tampered), now) },
		"sealed for a client of another secret": func() (signin.Flow, error) { return other.OpenFlow(sealed, now) },
		"not base64":                            func() (signin.Flow, error) { return o.OpenFlow("%%%", now) },
		"empty":                                 func() (signin.Flow, error) { return o.OpenFlow("", now) },
	} {
		if got, err := open(); err != signin.ErrBadFlow || got != (signin.Flow{}) {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	if signin.RandomToken() == signin.RandomToken() || len(signin.RandomToken()) != 43 {
		t.Error("tokens are not 256 random bits")
	}
}

func TestCheckIssuer(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"https://login.example.com/realms/staff": true,
		"http://127.0.0.1:5556":                  true,
		"http://localhost:8080/dex":              true,
		"http://login.example.com":               false,
		"https://user:pw@login.example.com":      false,
		"https://login.example.com/?x=1":         false,
		"login.example.com":                      false,
		"ftp://login.example.com":                false,
	} {
		if err := signin.CheckIssuer(raw); (err == nil) != ok {
			t.Errorf("CheckIssuer(%q) = %v", raw, err)
		}
	}
}

// Some providers send email_verified as a string.
func TestEmailVerifiedAsBoolOrString(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{`true`: true, `"true"`: true, `false`: false, `"false"`: false, `null`: false} {
		var c signin.Claims
		if err := json.Unmarshal([]byte(`{"email": "a@example.com", "email_verified": `+raw+`}`), &c); err != nil || bool(c.EmailVerified) != want {
			t.Errorf("email_verified %s: %v, %v", raw, c.EmailVerified, err)
		}
	}
	var c signin.Claims
	if err := json.Unmarshal([]byte(`{"email_verified": "yes"}`), &c); err == nil {
		t.Error(`email_verified "yes" was read`)
	}
}
