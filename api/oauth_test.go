package api_test

import (
	"net/http"
	"testing"
)

func TestOAuthIntegrationIsCheckedAndItsSecretNeverShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := e.brand.OAuthClients[0]
	oauth := map[string]any{"clientId": client.ClientID, "clientSecret": client.ClientSecret, "scope": client.Scope}

	r := e.do("POST", "/integrations", e.createBody(map[string]any{"token": nil, "oauth": oauth}))
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["authMethod"] != "oauth" || got["oauth"].(map[string]any)["clientId"] != client.ClientID {
		t.Errorf("resource = %v", got)
	}
	id := got["id"].(string)

	bad := map[string]any{"clientId": client.ClientID, "clientSecret": "wrong-secret-value", "scope": client.Scope}
	rejected := e.do("POST", "/integrations", e.createBody(map[string]any{"token": nil, "oauth": bad}))
	if rejected.status != http.StatusUnprocessableEntity {
		t.Errorf("wrong secret: %d %s", rejected.status, rejected.body)
	}
	missing := e.do("POST", "/integrations", e.createBody(map[string]any{"token": nil, "oauth": map[string]any{"clientId": "x"}}))
	if missing.status != http.StatusBadRequest {
		t.Errorf("missing secret: %d %s", missing.status, missing.body)
	}

	// Switch to a token with PATCH, then back to OAuth.
	toToken := e.do("PATCH", "/integrations/"+id, map[string]any{"token": e.adminTok()})
	if toToken.status != 200 || toToken.json(t)["authMethod"] != "token" || toToken.json(t)["oauth"] != nil {
		t.Fatalf("switch to token: %d %s", toToken.status, toToken.body)
	}
	toOAuth := e.do("PATCH", "/integrations/"+id, map[string]any{"oauth": oauth})
	if toOAuth.status != 200 || toOAuth.json(t)["authMethod"] != "oauth" {
		t.Fatalf("switch to oauth: %d %s", toOAuth.status, toOAuth.body)
	}
	e.assertNoSecret([]response{r, rejected, missing, toToken, toOAuth, e.do("GET", "/integrations", nil)},
		client.ClientSecret, "wrong-secret-value", e.adminTok())
}
