package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Issue 31 (info): a webhook goes over plain http only to a host of
// MICROAPPS_WEBHOOK_ALLOWED_HOSTS; anywhere else the client refuses it
// before any name is resolved or address dialled.
func TestWebhookClientSendsPlainHTTPOnlyToAllowedHosts(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	post := func(c *http.Client, u string) error {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, u := range []string{"http://hooks.example.com/services/T/B/x", "http://HOOKS.example.com./x", srv.URL + "/hook"} {
		if err := post(WebhookClient([]string{"localhost"}), u); !errors.Is(err, errPlainHTTP) {
			t.Errorf("plain http to %s: %v, want refused as plain http", u, err)
		}
	}
	if err := post(WebhookClient([]string{" 127.0.0.1 "}), srv.URL+"/hook"); err != nil || hits.Load() != 1 {
		t.Errorf("plain http to an allowed host: %v, %d hits", err, hits.Load())
	}
}
