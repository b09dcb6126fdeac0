package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

type integrationResource struct {
	ID        string `json:"id"`
	TokenHint string `json:"tokenHint"`
	Status    string `json:"status"`
}

type syncRunResource struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// createThroughAPI registers an integration with the admin API at base.
func createThroughAPI(t testing.TB, base string, body map[string]any) integrationResource {
	t.Helper()
	r := call(t, nil, "POST", base+"/api/v1/integrations", body, adminToken)
	if r.status != http.StatusCreated {
		t.Fatalf("POST integration: %d %s", r.status, r.body)
	}
	return decode[integrationResource](t, r)
}

// syncThroughAPI triggers a sync with the admin API and waits for its end.
func syncThroughAPI(t testing.TB, base, integrationID, kind string, timeout time.Duration) (syncRunResource, []httpResult) {
	t.Helper()
	var seen []httpResult
	r := call(t, nil, "POST", base+"/api/v1/integrations/"+integrationID+"/syncs", map[string]string{"kind": kind}, adminToken)
	seen = append(seen, r)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST sync: %d %s", r.status, r.body)
	}
	run := decode[syncRunResource](t, r)
	deadline := time.Now().Add(timeout)
	for run.Status != "succeeded" && run.Status != "failed" {
		if time.Now().After(deadline) {
			t.Fatalf("sync %d of %s still %s after %v", run.ID, integrationID, run.Status, timeout)
		}
		time.Sleep(100 * time.Millisecond)
		r = call(t, nil, "GET", fmt.Sprintf("%s/api/v1/integrations/%s/syncs/%d", base, integrationID, run.ID), nil, adminToken)
		seen = append(seen, r)
		run = decode[syncRunResource](t, r)
	}
	return run, seen
}

// dumpDatabase returns every row of every table of the public schema as
// text: sync runs and their errors, request logs, audit events,
// notifications, River's jobs and their errors, sessions.
func dumpDatabase(t testing.TB, st *store.Store) string {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var text string
		q := "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM " + pgx.Identifier{tbl}.Sanitize() + " t"
		if err := st.Pool().QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		fmt.Fprintf(&b, "== %s\n%s\n", tbl, text)
	}
	return b.String()
}

// TestNoSecretLeaksFromAWholeSync registers a token integration and an OAuth
// integration through the admin API, syncs both with request logging on and
// a debug-level logger, through 500s, a change that raises notifications and
// a revoked token, then looks for the token, the OAuth client secret, the
// admin token and the encryption key everywhere they could leak: every log
// line, every row of every table (request logs, audit events, sync runs and
// their errors, River jobs), and every API and page response.
func TestNoSecretLeaksFromAWholeSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newSim(t, simOptions{seed: 5, spec: qualtricssim.Spec{Surveys: 4, Recipients: 120, Emails: []string{"alice@example.com"}}})
	oauthClient := q.brand.OAuthClients[0]
	st := storetest.New(t)
	kr, rawKeys := newKeyring(t)
	logBuf := &syncBuffer{}
	enc := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logBuf), zapcore.DebugLevel))
	s := newStack(t, st, kr, stackOptions{log: log, workers: 2})
	base := s.srv.URL
	secrets := map[string]string{"API token": q.token, "OAuth client secret": oauthClient.ClientSecret,
		"admin token": adminToken, "encryption key": strings.TrimPrefix(rawKeys, "k1:")}

	var responses []httpResult
	tokIn := createThroughAPI(t, base, map[string]any{"name": "Sales", "functionalGroup": "Sales", "baseUrl": q.baseURL(),
		"token": q.token, "logging": map[string]any{"enabled": true}})
	oauthIn := createThroughAPI(t, base, map[string]any{"name": "Support", "functionalGroup": "Support", "baseUrl": q.baseURL(),
		"oauth": map[string]any{"clientId": oauthClient.ClientID, "clientSecret": oauthClient.ClientSecret}, "logging": map[string]any{"enabled": true}})
	r := call(t, nil, "PUT", base+"/api/v1/integrations/"+tokIn.ID+"/brand-admins/alice@example.com", nil, adminToken)
	if r.status != http.StatusNoContent {
		t.Fatalf("PUT brand admin: %d %s", r.status, r.body)
	}

	// First syncs through 5% of 500s and 504s, then a change the next sync notifies.
	q.sim.SetFaults(qualtricssim.Faults{ErrorRate500: 0.05, ErrorRate504: 0.05})
	for _, id := range []string{tokIn.ID, oauthIn.ID} {
		run, seen := syncThroughAPI(t, base, id, "full", time.Minute)
		responses = append(responses, seen...)
		if run.Status != "succeeded" {
			t.Fatalf("first sync of %s: %s %q", id, run.Status, run.Error)
		}
	}
	q.sim.SetFaults(qualtricssim.Faults{})
	addInvitation(t, q, "alice@example.com", "Secrets check")
	run, seen := syncThroughAPI(t, base, tokIn.ID, "incremental", time.Minute)
	responses = append(responses, seen...)
	if run.Status != "succeeded" {
		t.Fatalf("incremental sync: %s %q", run.Status, run.Error)
	}
	// A revoked token and a revoked OAuth client: failed runs with errors.
	_ = q.sim.RevokeToken(q.token)
	_ = q.sim.RevokeClient(oauthClient.ClientID)
	for _, id := range []string{tokIn.ID, oauthIn.ID} {
		run, seen := syncThroughAPI(t, base, id, "full", time.Minute)
		responses = append(responses, seen...)
		if run.Status != "failed" || run.Error == "" {
			t.Fatalf("sync with revoked credentials: %s %q", run.Status, run.Error)
		}
	}
	// A token change the check rejects: the API must not echo it.
	bad := call(t, nil, "PUT", base+"/api/v1/integrations/"+tokIn.ID+"/token", map[string]string{"token": q.token}, adminToken)
	if bad.status < 400 {
		t.Fatalf("a revoked token was accepted: %d", bad.status)
	}
	responses = append(responses, bad)

	for _, path := range []string{"/api/v1/integrations", "/api/v1/integrations/" + tokIn.ID, "/api/v1/integrations/" + oauthIn.ID,
		"/api/v1/integrations/" + tokIn.ID + "/syncs", "/api/v1/integrations/" + oauthIn.ID + "/syncs",
		"/api/v1/integrations/" + tokIn.ID + "/logs", "/api/v1/integrations/" + oauthIn.ID + "/logs",
		"/api/v1/integrations/" + tokIn.ID + "/brand-admins", "/api/v1/audit-events"} {
		r := call(t, nil, "GET", base+path, nil, adminToken)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, r.status)
		}
		responses = append(responses, r)
	}
	for _, path := range []string{"/", "/notifications", "/admin/surveys", "/api/v1/me/surveys", "/api/v1/me/notifications"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-Forwarded-Email", "alice@example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s as alice: %d", path, resp.StatusCode)
		}
	}
	// Issue 31, item 4: the one-click unsubscribe address is a credential:
	// the access log recorded it, and the table held it in clear.
	unsub, err := st.UnsubscribeToken(ctx, "alice@example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	secrets["unsubscribe token"] = unsub
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, base+"/unsubscribe/"+unsub, strings.NewReader("List-Unsubscribe=One-Click"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /unsubscribe/…: %d", method, resp.StatusCode)
		}
	}

	logs := logBuf.String()
	db := dumpDatabase(t, st)
	t.Run("the run really logged at debug level, logged requests and raised notifications", func(t *testing.T) {
		if !strings.Contains(logs, `"L":"DEBUG"`) {
			t.Errorf("no debug line was logged: the check would prove nothing")
		}
		var logged, notified int
		_ = st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM request_logs), (SELECT count(*) FROM notifications)`).Scan(&logged, &notified)
		if logged == 0 || notified == 0 {
			t.Errorf("%d request log rows, %d notifications", logged, notified)
		}
		if !strings.Contains(db, "401") {
			t.Errorf("no 401 recorded anywhere in the database")
		}
		if !strings.Contains(logs, "/unsubscribe/REDACTED") {
			t.Errorf("the unsubscribe requests are not in the access log")
		}
	})
	for what, secret := range secrets {
		t.Run("the "+what+" is nowhere", func(t *testing.T) {
			if strings.Contains(logs, secret) {
				i := strings.Index(logs, secret)
				t.Errorf("in the logs: …%s…", logs[max(0, i-300):i])
			}
			if strings.Contains(db, secret) {
				i := strings.Index(db, secret)
				t.Errorf("in the database: …%s…", db[max(0, i-300):i])
			}
			for _, r := range responses {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("in a response: %s", r.body)
				}
			}
		})
	}
}

// addInvitation adds a survey with one invitation to email, delivered now,
// so the next sync raises a new_survey notification.
func addInvitation(t testing.TB, q *qsim, email, name string) qualtricssim.Distribution {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second) // Qualtrics dates have whole seconds
	sv, err := q.sim.AddSurvey(q.brand.ID, qualtricssim.Survey{Name: name, IsActive: true,
		CreationDate: now, LastModifiedDate: now, StartDate: now, EndDate: now.Add(10 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := q.sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, RequestType: "Invite", SendDate: now,
		LinkExpiration: now.Add(7 * 24 * time.Hour), Headers: qualtricssim.Headers{Subject: name},
		Recipients: []qualtricssim.Recipient{{Email: email, FirstName: "A", LastName: "B", Status: "Success", SentAt: now}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestNoSecretInServeOutputOrMetrics runs the real `microapps serve` binary:
// its own middleware, access log and metrics registry only exist there. It
// serves /metrics on MICROAPPS_METRICS_ADDR, as the Kubernetes manifests do,
// and checks the public listener does not.
func TestNoSecretInServeOutputOrMetrics(t *testing.T) {
	t.Parallel()
	q := newSim(t, simOptions{seed: 6, spec: qualtricssim.Spec{Surveys: 3, Recipients: 60}})
	// Issue 31, item 6: a password in the URL's query (PostgreSQL's
	// password and sslpassword parameters) was logged at start; the test
	// server trusts loopback, so these are sent and ignored.
	const dbPassword, sslPassword = "db-query-password-31", "ssl-key-password-31"
	dbURL := storetest.NewMigrated(t)
	if strings.Contains(dbURL, "?") {
		dbURL += "&password=" + dbPassword + "&sslpassword=" + sslPassword
	} else {
		dbURL += "?password=" + dbPassword + "&sslpassword=" + sslPassword
	}
	_, rawKeys := newKeyring(t)
	env := serveEnv(dbURL, rawKeys, 2)
	metricsBase := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	env["MICROAPPS_METRICS_ADDR"] = strings.TrimPrefix(metricsBase, "http://")
	p := startServe(t, env)
	p.waitReady(30 * time.Second)
	in := createThroughAPI(t, p.base, map[string]any{"name": "Sales", "baseUrl": q.baseURL(), "token": q.token,
		"logging": map[string]any{"enabled": true}})
	q.sim.SetFaults(qualtricssim.Faults{ErrorRate500: 0.05})
	if run, _ := syncThroughAPI(t, p.base, in.ID, "full", 2*time.Minute); run.Status != "succeeded" {
		t.Fatalf("sync: %s %q", run.Status, run.Error)
	}
	q.sim.SetFaults(qualtricssim.Faults{})
	_ = q.sim.RevokeToken(q.token)
	if run, _ := syncThroughAPI(t, p.base, in.ID, "incremental", 2*time.Minute); run.Status != "failed" {
		t.Fatalf("sync with a revoked token: %s", run.Status)
	}
	// Issue 18, item 6: with MICROAPPS_METRICS_ADDR, /metrics (integration
	// ids, queue depths, routes) is on that listener only, not the public one.
	metrics := call(t, nil, "GET", metricsBase+"/metrics", nil, "")
	if metrics.status != http.StatusOK || !strings.Contains(string(metrics.body), "microapps_") || !strings.Contains(string(metrics.body), in.ID) {
		t.Fatalf("GET /metrics on the metrics listener: %d\n%.500s", metrics.status, metrics.body)
	}
	if public := call(t, nil, "GET", p.base+"/metrics", nil, ""); public.status != http.StatusNotFound || strings.Contains(string(public.body), in.ID) {
		t.Errorf("GET /metrics on the public listener: %d\n%.300s", public.status, public.body)
	}
	for _, path := range []string{"/", "/readyz", "/api/v1/integrations"} {
		if r := call(t, nil, "GET", metricsBase+path, nil, adminToken); r.status != http.StatusNotFound {
			t.Errorf("the metrics listener serves %s: %d", path, r.status)
		}
	}
	p.stop()
	out := p.logs()
	if !strings.Contains(out, `"msg":"http request"`) {
		t.Fatalf("no access log line: the check would prove nothing\n%s", tail(out, 2000))
	}
	if !strings.Contains(out, "password=xxxxx") || !strings.Contains(out, "sslpassword=xxxxx") {
		t.Errorf("the start-up line does not show the masked database URL: the check would prove nothing\n%s", tail(out, 2000))
	}
	for what, secret := range map[string]string{"API token": q.token, "admin token": adminToken, "encryption key": strings.TrimPrefix(rawKeys, "k1:"),
		"database password": dbPassword, "database key password": sslPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s is in serve's output", what)
		}
		if strings.Contains(string(metrics.body), secret) {
			t.Errorf("the %s is in /metrics", what)
		}
	}
}

// TestAuditActorIsNoHashOfTheAdminToken: the audit trail
// names the admin token that acted by an HMAC under a key derived from the
// encryption keys, not by a prefix of its SHA-256 that anyone reading the
// trail could test guesses against. Replicas sharing the keys agree on the
// name; another key ring gives another.
func TestAuditActorIsNoHashOfTheAdminToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	kr, rawKeys := newKeyring(t)
	same, err := seal.ParseKeyring(rawKeys)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newKeyring(t)
	actorOf := func(kr *seal.Keyring, name string) string {
		h := api.New(api.Options{Service: manage.New(manage.Options{Store: st, Keyring: kr, Log: zap.NewNop(), SealWebhookSecret: func(id, secret string) (string, []byte, error) { return notify.SealWebhookSecret(kr, id, secret) }}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
		in := newUUID()
		if _, err := st.Pool().Exec(ctx, `INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status)
			VALUES ($1, $2, $2, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active')`, in, name); err != nil {
			t.Fatal(err)
		}
		if r := serveOnce(t, h, "PUT", "/integrations/"+in+"/brand-admins/ann@example.com", nil); r.status != http.StatusNoContent {
			t.Fatalf("PUT brand admin: %d %s", r.status, r.body)
		}
		var actor string
		if err := st.Pool().QueryRow(ctx, `SELECT actor FROM audit_events WHERE details::text LIKE '%' || $1 || '%' OR integration_id::text = $1 ORDER BY id DESC LIMIT 1`, in).Scan(&actor); err != nil {
			t.Fatal(err)
		}
		return actor
	}
	a, b, c := actorOf(kr, "A"), actorOf(same, "B"), actorOf(other, "C")
	sum := sha256.Sum256([]byte(adminToken))
	digest := hex.EncodeToString(sum[:])
	t.Logf("actors: %s, %s, %s", a, b, c)
	for _, actor := range []string{a, b, c} {
		id, ok := strings.CutPrefix(actor, "admin-token:")
		if !ok || len(id) < 16 {
			t.Errorf("actor %q is not an admin token's name of 64 bits or more", actor)
		}
		if len(id) >= 8 && strings.Contains(digest, id[:8]) {
			t.Errorf("actor %q is a prefix of the token's SHA-256 %s", actor, digest)
		}
	}
	if a != b {
		t.Errorf("two replicas with the same keys name the token %q and %q", a, b)
	}
	if a == c {
		t.Errorf("another key ring names the token the same: %q", a)
	}
}

// TestASealedSecretOpensOnlyAsItsOwnKind: an
// integration's Qualtrics token, sealed by the admin API, copied into the
// same row's event key column (one UPDATE by someone with write access to
// the database) does not become the key callbacks are checked with: a
// callback signed with the token is not accepted.
func TestASealedSecretOpensOnlyAsItsOwnKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newSim(t, simOptions{seed: 11, spec: qualtricssim.Spec{Surveys: 1, Recipients: 5}})
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	s := newStack(t, st, kr, stackOptions{})
	in := createThroughAPI(t, s.srv.URL, map[string]any{"name": "Sales", "baseUrl": q.baseURL(), "token": q.token})
	if _, err := st.Pool().Exec(ctx, `UPDATE integrations SET events_enabled = true, events_key_id = secret_key_id, events_key_sealed = secret_sealed WHERE id = $1`, in.ID); err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf(`{"SurveyID":"SV_x","ResponseID":"R_x","RecipientID":"CID_x","DistributionID":"EMD_x","CompletedDate":%q,"Status":"Complete"}`,
		time.Now().UTC().Format(time.RFC3339))
	form := url.Values{"Topic": {"surveyengine.completedResponse.SV_x"}, "MSG": {msg}, "HMAC": {qualtricssim.SignEvent(q.token, []byte(msg))}}
	resp, err := http.Post(s.srv.URL+"/hooks/qualtrics/"+in.ID, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 300 {
		t.Errorf("a callback signed with the integration's token, its credential moved into the event key, got %d %s", resp.StatusCode, body)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, in.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d events stored (%v)", n, err)
	}
}
