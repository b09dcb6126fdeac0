package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/seal"
)

func TestCreateChecksTheTokenSealsItAndQueuesAFullSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("POST", "/integrations", e.createBody(map[string]any{"icon": "chart",
		"schedule": map[string]any{"fullSyncEvery": "2h", "incrementalSyncEvery": "10m"}}))
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.json(t)
	id, _ := got["id"].(string)
	if loc := r.header.Get("Location"); loc != "/api/v1/integrations/"+id {
		t.Errorf("Location = %q", loc)
	}
	tok := e.adminTok()
	if got["tokenHint"] != "…"+tok[len(tok)-4:] {
		t.Errorf("tokenHint = %v", got["tokenHint"])
	}
	brand := got["brand"].(map[string]any)
	if brand["brandId"] != "brandone" || brand["accountType"] != "UT_BRANDADMIN" {
		t.Errorf("brand = %v", brand)
	}
	if got["icon"] != "chart" || got["status"] != "active" || got["authMethod"] != "token" {
		t.Errorf("resource = %v", got)
	}
	sched := got["schedule"].(map[string]any)
	if sched["fullSyncEvery"] != "2h" || sched["incrementalSyncEvery"] != "10m" || sched["verifyEvery"] != "24h" {
		t.Errorf("schedule = %v", sched)
	}
	last, _ := got["lastSync"].(map[string]any)
	if last == nil || last["kind"] != "full" || last["status"] != "queued" {
		t.Errorf("lastSync = %v, want a queued full sync", got["lastSync"])
	}

	// The stored secret is sealed, not the token.
	in, err := e.store.GetIntegration(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(in.SecretSealed), tok) || in.SecretKeyID != "k1" {
		t.Fatalf("secret not sealed with k1: key %q", in.SecretKeyID)
	}

	list := e.do("GET", "/integrations", nil)
	get := e.do("GET", "/integrations/"+id, nil)
	if list.status != 200 || get.status != 200 {
		t.Fatalf("list %d get %d", list.status, get.status)
	}
	if n := len(list.json(t)["items"].([]any)); n != 1 {
		t.Fatalf("list has %d items", n)
	}
	e.assertNoSecret([]response{r, list, get}, tok)
}

func TestCreateRejectsBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"an empty name is refused", e.createBody(map[string]any{"name": " "}), 400, "name"},
		{"a 201-character name is refused", e.createBody(map[string]any{"name": long}), 400, "name"},
		{"a missing name is refused", e.createBody(map[string]any{"name": nil}), 400, "name"},
		{"a look-alike host is refused", e.createBody(map[string]any{"baseUrl": "https://iad1.qualtrics.com.evil.example/API/v3/"}), 400, "baseUrl"},
		{"plain http to qualtrics is refused", e.createBody(map[string]any{"baseUrl": "http://iad1.qualtrics.com/API/v3/"}), 400, "baseUrl"},
		{"userinfo in the base URL is refused", e.createBody(map[string]any{"baseUrl": "https://user@iad1.qualtrics.com/API/v3/"}), 400, "baseUrl"},
		{"a missing token is refused", e.createBody(map[string]any{"token": nil}), 400, "token"},
		{"a token with spaces is refused", e.createBody(map[string]any{"token": "abc def"}), 400, "token"},
		{"a 201-character token is refused", e.createBody(map[string]any{"token": long}), 400, "token"},
		{"token and oauth together are refused", e.createBody(map[string]any{"oauth": map[string]any{"clientId": "a", "clientSecret": "b"}}), 400, "token"},
		{"a timeout of 0 is refused", e.createBody(map[string]any{"requestTimeoutSeconds": 0}), 400, "requestTimeoutSeconds"},
		{"a timeout of 601 is refused", e.createBody(map[string]any{"requestTimeoutSeconds": 601}), 400, "requestTimeoutSeconds"},
		{"3001 requests per minute are refused", e.createBody(map[string]any{"rateLimit": map[string]any{"enabled": true, "requestsPerMinute": 3001}}), 400, "rateLimit.requestsPerMinute"},
		{"a full sync under 5m is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncEvery": "4m"}}), 400, "schedule.fullSyncEvery"},
		{"a verifyEvery under 1h is refused", e.createBody(map[string]any{"schedule": map[string]any{"verifyEvery": "30m"}}), 400, "schedule.verifyEvery"},
		{"a verifyEvery shorter than the full sync is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncEvery": "6h", "verifyEvery": "2h"}}), 400, "schedule.verifyEvery"},
		{"an unparsable duration is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncEvery": "hourly"}}), 400, "schedule.fullSyncEvery"},
		{"an incremental under 1m is refused", e.createBody(map[string]any{"schedule": map[string]any{"incrementalSyncEvery": "30s"}}), 400, "schedule.incrementalSyncEvery"},
		{"an incremental as long as the full sync is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncEvery": "1h", "incrementalSyncEvery": "1h"}}), 400, "schedule.incrementalSyncEvery"},
		{"an unknown time zone is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncWindow": map[string]any{"start": "00:00", "end": "04:00", "timeZone": "Mars/Olympus"}}}), 400, "schedule.fullSyncWindow.timeZone"},
		{"a window that starts when it ends is refused", e.createBody(map[string]any{"schedule": map[string]any{"fullSyncWindow": map[string]any{"start": "02:00", "end": "02:00", "timeZone": "UTC"}}}), 400, "schedule.fullSyncWindow.end"},
		{"an unknown icon is refused", e.createBody(map[string]any{"icon": "rocket"}), 400, "icon"},
		{"an unknown field is refused", e.createBody(map[string]any{"colour": "blue"}), 400, "colour"},
		{"a javascript deep link is refused", e.createBody(map[string]any{"deepLinks": map[string]any{"results": "javascript:alert(1)"}}), 400, "deepLinks.results"},
		{"a string where a number belongs is refused", e.createBody(map[string]any{"requestTimeoutSeconds": "120"}), 400, "requestTimeoutSeconds"},
		{"malformed JSON says where", `{"name": "x",}`, 400, ""},
		{"an empty body is refused", "", 400, ""},
		{"two objects are refused", `{"name":"a"} {"name":"b"}`, 400, ""},
		{"a body over 1 MiB is 413", `{"name": "` + strings.Repeat("a", 1<<20) + `"}`, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/integrations", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			p := r.json(t)
			if tc.field != "" {
				found := false
				errs, _ := p["errors"].([]any)
				for _, fe := range errs {
					if fe.(map[string]any)["field"] == tc.field {
						found = true
					}
				}
				if !found {
					t.Errorf("no error for field %q: %s", tc.field, r.body)
				}
			}
			if strings.Contains(string(r.body), e.adminTok()) {
				t.Error("problem echoes the token")
			}
		})
	}
	if list, _ := e.store.ListIntegrations(t.Context()); len(list) != 0 {
		t.Fatalf("rejected requests wrote %d integrations", len(list))
	}
	if ev, _ := e.store.ListAuditEvents(t.Context(), 0, 10); len(ev) != 0 {
		t.Fatalf("rejected requests wrote %d audit events", len(ev))
	}
	if r := e.do("POST", "/integrations", `{"name": "x",}`); !strings.Contains(string(r.body), "at byte") {
		t.Errorf("malformed JSON should say where: %s", r.body)
	}
}

func TestCreateAnswersForQualtricsFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	r := e.do("POST", "/integrations", e.createBody(map[string]any{"token": "not-a-real-token-123"}))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "DCD_7") {
		t.Errorf("rejected token: %d %s", r.status, r.body)
	}
	e.assertNoSecret([]response{r}, "not-a-real-token-123")

	r = e.do("POST", "/integrations", e.createBody(map[string]any{"baseUrl": "http://127.0.0.1:1/API/v3/"}))
	if r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "127.0.0.1:1") {
		t.Errorf("unreachable Qualtrics: %d %s", r.status, r.body)
	}

	r = e.do("POST", "/integrations", e.createBody(map[string]any{"token": e.userTok()}))
	if r.status != http.StatusCreated {
		t.Fatalf("non-admin token: %d %s", r.status, r.body)
	}
	warnings, _ := r.json(t)["warnings"].([]any)
	if len(warnings) != 1 || !strings.Contains(warnings[0].(string), "only surveys that user owns or that are shared") {
		t.Errorf("warnings = %v", warnings)
	}
	if list, _ := e.store.ListIntegrations(t.Context()); len(list) != 1 {
		t.Fatalf("%d integrations stored, want only the accepted one", len(list))
	}
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ name, auth string }{
		{"no header is refused", ""},
		{"a wrong token is refused", "Bearer wrong-token-0123456789"},
		{"a basic header is refused", "Basic " + adminToken},
		{"the token without scheme is refused", adminToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.doAuth("GET", "/integrations", nil, tc.auth)
			if r.status != http.StatusUnauthorized || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	if r := e.doAuth("GET", "/openapi.yaml", nil, ""); r.status != 200 {
		t.Errorf("the spec needs no auth: %d", r.status)
	}
}

func TestPatchChangesOnlyWhatItNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.create(nil)
	id := created["id"].(string)

	r := e.do("PATCH", "/integrations/"+id, map[string]any{"name": "Sales", "logging": map[string]any{"enabled": true},
		"schedule": map[string]any{"fullSyncWindow": map[string]any{"start": "22:00", "end": "04:00", "timeZone": "Europe/Paris"}}})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["name"] != "Sales" || got["functionalGroup"] != "Customer Success" || got["logging"].(map[string]any)["enabled"] != true {
		t.Errorf("patched resource = %v", got)
	}
	if w := got["schedule"].(map[string]any)["fullSyncWindow"].(map[string]any); w["timeZone"] != "Europe/Paris" {
		t.Errorf("window = %v", w)
	}

	bad := e.do("PATCH", "/integrations/"+id, map[string]any{"name": "", "requestTimeoutSeconds": 5})
	if bad.status != 400 {
		t.Fatalf("%d %s", bad.status, bad.body)
	}
	after := e.do("GET", "/integrations/"+id, nil).json(t)
	if after["name"] != "Sales" || after["requestTimeoutSeconds"] != float64(120) {
		t.Errorf("a rejected PATCH changed something: %v", after)
	}

	r = e.do("PATCH", "/integrations/"+id, map[string]any{"status": "paused", "schedule": map[string]any{"fullSyncWindow": nil}})
	if r.status != 200 || r.json(t)["status"] != "paused" || r.json(t)["schedule"].(map[string]any)["fullSyncWindow"] != nil {
		t.Fatalf("pause/clear window: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", "/integrations/"+id, map[string]any{"status": "error"}); r.status != 400 {
		t.Errorf("status error is not writable: %d", r.status)
	}
	if r := e.do("PATCH", "/integrations/00000000-0000-0000-0000-000000000000", map[string]any{"name": "x"}); r.status != 404 {
		t.Errorf("unknown id: %d", r.status)
	}
	if r := e.do("PATCH", "/integrations/not-a-uuid", map[string]any{"name": "x"}); r.status != 404 {
		t.Errorf("malformed id: %d", r.status)
	}
}

func TestTokenChangeIsVerifiedAndClearsError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string)
	if _, err := e.store.UpdateIntegration(t.Context(), id, storeAudit(), func(in *storeIntegration) error {
		in.Status, in.StatusMessage = "error", "token rejected"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := e.do("PUT", "/integrations/"+id+"/token", map[string]any{"token": "bogus-token-xyz"}); r.status != 422 {
		t.Fatalf("bad token: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/integrations/"+id+"/token", map[string]any{}); r.status != 400 {
		t.Fatalf("missing token: %d %s", r.status, r.body)
	}
	newTok := e.userTok()
	r := e.do("PUT", "/integrations/"+id+"/token", map[string]any{"token": newTok})
	if r.status != http.StatusNoContent {
		t.Fatalf("good token: %d %s", r.status, r.body)
	}
	got := e.do("GET", "/integrations/"+id, nil).json(t)
	if got["status"] != "active" || got["tokenHint"] != "…"+newTok[len(newTok)-4:] {
		t.Errorf("after token change: %v", got)
	}
	e.assertNoSecret([]response{r}, newTok, "bogus-token-xyz")
}

func TestSyncTriggerIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string) // queues the first full sync
	first := e.do("POST", "/integrations/"+id+"/syncs", map[string]any{"kind": "full"})
	second := e.do("POST", "/integrations/"+id+"/syncs", nil)
	if first.status != 202 || second.status != 202 {
		t.Fatalf("%d %d", first.status, second.status)
	}
	if first.json(t)["id"] != second.json(t)["id"] {
		t.Errorf("a second trigger queued another run: %v vs %v", first.json(t)["id"], second.json(t)["id"])
	}
	if r := e.do("POST", "/integrations/"+id+"/syncs", map[string]any{"kind": "incremental"}); r.status != 409 {
		t.Errorf("incremental before a full sync: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/integrations/"+id+"/syncs", map[string]any{"kind": "partial"}); r.status != 400 {
		t.Errorf("unknown kind: %d", r.status)
	}
	list := e.do("GET", "/integrations/"+id+"/syncs", nil).json(t)["items"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d runs listed, want 1", len(list))
	}
	runID := int(list[0].(map[string]any)["id"].(float64))
	if r := e.do("GET", "/integrations/"+id+"/syncs/"+itoa(runID), nil); r.status != 200 || r.json(t)["status"] != "queued" {
		t.Errorf("get run: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/integrations/"+id+"/syncs/999999", nil); r.status != 404 {
		t.Errorf("unknown run: %d", r.status)
	}
	if r := e.do("GET", "/integrations/"+id+"/logs", nil); r.status != 200 || len(r.json(t)["items"].([]any)) != 0 {
		t.Errorf("logs: %d %s", r.status, r.body)
	}
}

func TestBrandAdminsAreNormalised(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string)
	for _, email := range []string{"%20Ana.Admin@Example.COM%20", "bo@example.com", "bo@example.com"} {
		if r := e.do("PUT", "/integrations/"+id+"/brand-admins/"+email, nil); r.status != 204 {
			t.Fatalf("put %s: %d %s", email, r.status, r.body)
		}
	}
	if r := e.do("PUT", "/integrations/"+id+"/brand-admins/not-an-email", nil); r.status != 400 {
		t.Errorf("bad email: %d", r.status)
	}
	items := e.do("GET", "/integrations/"+id+"/brand-admins", nil).json(t)["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["email"] != "ana.admin@example.com" {
		t.Fatalf("brand admins = %v", items)
	}
	if r := e.do("DELETE", "/integrations/"+id+"/brand-admins/BO@example.com", nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if items := e.do("GET", "/integrations/"+id+"/brand-admins", nil).json(t)["items"].([]any); len(items) != 1 {
		t.Fatalf("after delete: %v", items)
	}
	if r := e.do("GET", "/integrations/00000000-0000-0000-0000-000000000000/brand-admins", nil); r.status != 404 {
		t.Errorf("unknown integration: %d", r.status)
	}
}

func TestDeleteRemovesDataAndIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.create(nil)["id"].(string)
	e.do("PUT", "/integrations/"+id+"/brand-admins/ana@example.com", nil)
	if r := e.do("DELETE", "/integrations/"+id, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/integrations/"+id, nil); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	if r := e.do("DELETE", "/integrations/"+id, nil); r.status != 404 {
		t.Errorf("second delete: %d", r.status)
	}
	var n int
	if err := e.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM brand_admins`).Scan(&n); err != nil || n != 0 {
		t.Errorf("brand admins left: %d %v", n, err)
	}
	audit := e.do("GET", "/audit-events", nil).json(t)["items"].([]any)
	var actions []string
	for _, a := range audit {
		m := a.(map[string]any)
		actions = append(actions, m["action"].(string))
		if !strings.HasPrefix(m["actor"].(string), "admin-token:") || strings.Contains(m["actor"].(string), adminToken) {
			t.Errorf("actor %q", m["actor"])
		}
	}
	if strings.Join(actions, ",") != "integration.delete,brand_admin.add,integration.create" {
		t.Errorf("audit actions = %v", actions)
	}
	e.assertNoSecret(nil, e.adminTok(), adminToken)
}

// Issue 36: the veto rule is part of the integration, checked on write;
// overrideVeto goes with full syncs only, and a full run already queued is
// given it.
func TestVetoRuleAndOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.create(nil)
	id := created["id"].(string)
	if v, _ := created["veto"].(map[string]any); v["maxDeletePercent"] != float64(50) || v["minRows"] != float64(10) {
		t.Errorf("default veto %v", created["veto"])
	}
	for _, bad := range []map[string]any{{"maxDeletePercent": 0}, {"maxDeletePercent": 101}, {"minRows": -1}} {
		if r := e.do("PATCH", "/integrations/"+id, map[string]any{"veto": bad}); r.status != 400 || !strings.Contains(string(r.body), "veto.") {
			t.Errorf("veto %v: %d %s", bad, r.status, r.body)
		}
	}
	r := e.do("PATCH", "/integrations/"+id, map[string]any{"veto": map[string]any{"maxDeletePercent": 100, "minRows": 0}})
	if v, _ := r.json(t)["veto"].(map[string]any); r.status != 200 || v["maxDeletePercent"] != float64(100) || v["minRows"] != float64(0) {
		t.Errorf("patch veto: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/integrations/"+id+"/syncs", map[string]any{"kind": "incremental", "overrideVeto": true}); r.status != 400 ||
		!strings.Contains(string(r.body), "overrideVeto") {
		t.Errorf("incremental with overrideVeto: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/integrations/"+id+"/syncs", map[string]any{"kind": "full", "overrideVeto": true})
	if r.status != 202 {
		t.Fatalf("full with overrideVeto: %d %s", r.status, r.body)
	}
	var override bool
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT override_veto FROM sync_runs WHERE id = $1`, int64(r.json(t)["id"].(float64))).Scan(&override); err != nil || !override {
		t.Errorf("the queued run does not override the veto (%v)", err)
	}
	if _, ok := r.json(t)["vetoed"]; !ok {
		t.Error("a sync run has no vetoed field")
	}
}

// Issue 31 (info): a PATCH that moves baseUrl to another host name sent the
// stored credential to that host. It now needs the credential in the same
// PATCH (400 naming the field, and the new host is never called); a new
// port on the same host is checked with the stored credential.
func TestMovingTheBaseURLToAnotherHostNeedsTheSecretAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	// The same API, allowing a second name for the simulator's loopback.
	h := api.New(api.Options{Service: manage.New(manage.Options{Store: e.store, Syncs: e.syncs, Keyring: kr, AllowedHosts: []string{"127.0.0.1", "localhost"}, Log: zap.NewNop(), VerifyTimeout: 10 * time.Second}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", h))
	e.server = httptest.NewServer(mux)
	t.Cleanup(e.server.Close)
	// Two fronts of the simulator that count the calls by Host.
	var mu sync.Mutex
	calls := map[string]int{}
	front := func() string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls[r.Host]++
			mu.Unlock()
			e.sim.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	}
	callsTo := func(host string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[host]
	}
	fieldOf := func(r response) string {
		var p struct {
			Errors []struct{ Field, Message string } `json:"errors"`
		}
		if json.Unmarshal(r.body, &p) != nil || len(p.Errors) != 1 {
			return ""
		}
		return p.Errors[0].Field
	}

	client := e.brand.OAuthClients[0]
	for _, tc := range []struct {
		name, field string
		create      map[string]any
		secret      map[string]any
	}{
		{"token", "token", map[string]any{}, map[string]any{"token": e.adminTok()}},
		{"oauth", "oauth.clientSecret", map[string]any{"token": nil, "oauth": map[string]any{"clientId": client.ClientID, "clientSecret": client.ClientSecret}},
			map[string]any{"oauth": map[string]any{"clientId": client.ClientID, "clientSecret": client.ClientSecret}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, otherPort := front(), front()
			body := map[string]any{"name": "Moving " + tc.name, "baseUrl": "http://127.0.0.1:" + port + "/API/v3/"}
			for k, v := range tc.create {
				body[k] = v
			}
			id := e.create(body)["id"].(string)
			elsewhere := "http://localhost:" + port + "/API/v3/"
			r := e.do("PATCH", "/integrations/"+id, map[string]any{"baseUrl": elsewhere})
			if r.status != http.StatusBadRequest || fieldOf(r) != tc.field {
				t.Fatalf("another host without the secret: %d %s, want 400 naming %s", r.status, r.body, tc.field)
			}
			if n := callsTo("localhost:" + port); n != 0 {
				t.Fatalf("the new host was called %d times with the stored credential", n)
			}
			if got := e.do("GET", "/integrations/"+id, nil).json(t)["baseUrl"]; got != "http://127.0.0.1:"+port+"/API/v3/" {
				t.Errorf("the refused PATCH changed baseUrl to %v", got)
			}
			// Another port on the same host: the stored credential is checked there.
			r = e.do("PATCH", "/integrations/"+id, map[string]any{"baseUrl": "http://127.0.0.1:" + otherPort + "/API/v3/"})
			if r.status != http.StatusOK || r.json(t)["baseUrl"] != "http://127.0.0.1:"+otherPort+"/API/v3/" {
				t.Fatalf("another port on the same host: %d %s", r.status, r.body)
			}
			// Another host with the secret in the same PATCH.
			patch := map[string]any{"baseUrl": elsewhere}
			for k, v := range tc.secret {
				patch[k] = v
			}
			r = e.do("PATCH", "/integrations/"+id, patch)
			if r.status != http.StatusOK || r.json(t)["baseUrl"] != elsewhere || callsTo("localhost:"+port) == 0 {
				t.Fatalf("another host with the secret: %d %s", r.status, r.body)
			}
		})
	}
}
