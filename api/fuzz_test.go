package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzWriteBodies posts arbitrary bodies to create and patch: whatever comes
// in, the answer is never a 5xx and never echoes a stack or internals.
func FuzzWriteBodies(f *testing.F) {
	e := newEnv(f)
	id := e.create(nil)["id"].(string)
	for _, seed := range []string{
		`{}`, `null`, `[]`, `"x"`, `{"name": null}`, `{"name": 1e400}`, `{"schedule": {"fullSyncWindow": "x"}}`,
		`{"schedule": {"fullSyncEvery": "-1h"}}`, `{"rateLimit": {"requestsPerMinute": -5}}`, `{"deepLinks": {"results": "https://{host}/{x}"}}`,
		`{"oauth": {}}`, `{"oauth": {"clientId": "a\u0000b", "clientSecret": "c"}}`, `{"name": "\ud800"}`, `{"status": "error"}`,
		`{"baseUrl": "https://[::1]/API/v3/"}`, `{"baseUrl": "https://169.254.169.254/API/v3/"}`, `{"icon": {}}`,
		`{"name": "a", "name": "b"}`, `{"schedule": {"fullSyncWindow": {"start": "25:00", "end": "1:00", "timeZone": "Local"}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range []struct{ method, path string }{{"POST", "/integrations"}, {"PATCH", "/integrations/" + id}} {
			req, _ := http.NewRequest(target.method, e.server.URL+"/api/v1"+target.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%s %s with %q → %d %s", target.method, target.path, body, resp.StatusCode, out)
			}
			if bytes.Contains(out, []byte("goroutine")) || bytes.Contains(out, []byte(".go:")) {
				t.Fatalf("answer leaks internals: %s", out)
			}
		}
	})
}
