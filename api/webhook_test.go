package api_test

import (
	"strings"
	"testing"
)

func TestWebhookSettingsHideTheirSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string)
	const hook = "https://hooks.example.com/services/T000/B000/XXXXSECRETPATH"
	const secret = "webhook-signing-secret-123"
	if r := e.do("PUT", "/integrations/"+id+"/webhook", map[string]any{"url": "ftp://x", "format": "irc"}); r.status != 400 {
		t.Fatalf("bad webhook accepted: %d %s", r.status, r.body)
	}
	put := e.do("PUT", "/integrations/"+id+"/webhook", map[string]any{"url": hook, "secret": secret, "format": "slack"})
	if put.status != 204 {
		t.Fatalf("put: %d %s", put.status, put.body)
	}
	got := e.do("GET", "/integrations/"+id+"/webhook", nil)
	m := got.json(t)
	if m["url"] != "https://hooks.example.com/…" || m["format"] != "slack" || m["signed"] != true {
		t.Errorf("webhook = %v", m)
	}
	wh, err := e.store.GetWebhook(t.Context(), id)
	if err != nil || wh.URL != hook || len(wh.SecretSealed) == 0 || strings.Contains(string(wh.SecretSealed), secret) {
		t.Fatalf("stored webhook: %+v %v", wh, err)
	}
	del := e.do("DELETE", "/integrations/"+id+"/webhook", nil)
	if del.status != 204 {
		t.Fatalf("delete: %d", del.status)
	}
	if m := e.do("GET", "/integrations/"+id+"/webhook", nil).json(t); m["url"] != "" || m["signed"] != false {
		t.Errorf("after delete: %v", m)
	}
	if r := e.do("GET", "/integrations/"+id+"/deliveries", nil); r.status != 200 || len(r.json(t)["items"].([]any)) != 0 {
		t.Errorf("deliveries: %d %s", r.status, r.body)
	}
	audit := e.do("GET", "/audit-events", nil)
	e.assertNoSecret([]response{put, got, del, audit}, secret, "XXXXSECRETPATH")
}

func TestNotificationDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string)
	if m := e.do("GET", "/integrations/"+id+"/notification-defaults", nil).json(t); m["language"] != "" || m["timeZone"] != "" {
		t.Fatalf("defaults %v, want the service's", m)
	}
	for _, bad := range []map[string]any{{"language": "de"}, {"timeZone": "Mars/Olympus"}, {"timeZone": "Local"}, {"lang": "fr"}} {
		if r := e.do("PUT", "/integrations/"+id+"/notification-defaults", bad); r.status != 400 {
			t.Errorf("%v: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.do("PUT", "/integrations/"+id+"/notification-defaults", map[string]any{"language": "fr", "timeZone": "Europe/Paris"}); r.status != 204 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if m := e.do("GET", "/integrations/"+id+"/notification-defaults", nil).json(t); m["language"] != "fr" || m["timeZone"] != "Europe/Paris" {
		t.Fatalf("defaults %v", m)
	}
	if r := e.do("GET", "/integrations/00000000-0000-0000-0000-000000000000/notification-defaults", nil); r.status != 404 {
		t.Fatalf("unknown integration: %d", r.status)
	}
}
