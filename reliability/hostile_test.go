package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/web"
)

// Hostile names and emails as a Qualtrics brand could hold them.
const (
	scriptName = `<script>alert("pwned")</script> Pulse`
	attrName   = `"><img src=x onerror=alert(1)> 'quoted' & more`
	rtlName    = "\u202Eexe.fdp\u202C استطلاع الرضا"
	htmlEmail  = `o'brien+<i>x</i>@example.com`
)

const hostileInt = "00000000-0000-4000-8000-0000000000e1"

// hostileWorld stores one integration whose surveys, distribution subjects,
// recipients and notifications carry hostile text; viewer@example.com is a
// recipient of each and its Brand Admin.
func hostileWorld(t testing.TB) (*store.Store, http.Handler, http.Handler) {
	t.Helper()
	st := storetest.New(t)
	now := time.Now().UTC()
	ex := func(sql string, args ...any) {
		if _, err := st.Pool().Exec(context.Background(), sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	ex(`INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, last_success_at)
		VALUES ($1, $2, $2, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active', $3)`, hostileInt, `<b>Sales</b> "EMEA"`, now)
	ex(`INSERT INTO brand_admins (integration_id, email) VALUES ($1, 'viewer@example.com')`, hostileInt)
	for i, name := range []string{scriptName, attrName, rtlName} {
		sv, d := "SV_h"+string(rune('1'+i)), "EMD_h"+string(rune('1'+i))
		ex(`INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date, responses_auditable) VALUES ($1, $2, $3, true, $4, 3)`,
			hostileInt, sv, name, now.Add(30*24*time.Hour))
		ex(`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, send_date, created_date, link_expiration, sent, finished, from_name, subject)
			VALUES ($1, $2, $3, 'Invite', $4, $4, $5, 2, 1, $6, $6)`, hostileInt, d, sv, now.Add(-time.Hour), now.Add(7*24*time.Hour), name)
		ex(`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at, respond_link, first_name, last_name)
			VALUES ($1, $2, 'CID_v', $3, 'viewer@example.com', 'Success', $4, $5, $6, $6),
			       ($1, $2, 'CID_h', $3, $7, 'SurveyFinished', $4, 'javascript:alert(1)', $6, $6)`,
			hostileInt, d, sv, now.Add(-time.Hour), "https://iad1.qualtrics.com/jfe/form/"+sv+"?x=\"><script>", name, htmlEmail)
		ex(`INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, data, created_at, expires_at)
			VALUES ($1, 'new_survey', $2, 'viewer@example.com', $3, $4,
			  jsonb_build_object('surveyName', $5::text, 'functionalGroup', '<b>Sales</b>', 'respondLink', 'javascript:alert(1)'), $6, $7)`,
			hostileInt, "h"+sv, sv, d, name, now.Add(-time.Minute), now.Add(47*time.Hour))
	}
	srv, err := web.New(web.Options{Store: st, AuthMode: web.AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv.Handler(), srv.MeAPI()
}

func asUser(h http.Handler, email, target string) *httptest.ResponseRecorder {
	req, err := http.NewRequest(http.MethodGet, "http://pages.test"+target, nil)
	if err != nil {
		return nil
	}
	req.RequestURI = target
	req.RemoteAddr = "127.0.0.1:40000"
	if email != "" {
		req.Header.Set("X-Forwarded-Email", email)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// leaks are what an answer must never contain: a stack trace, a Go source
// position, a database error.
var leaks = []string{"goroutine ", "panic", ".go:", "SQLSTATE", "pgx", "runtime error", "pq:", "syntax error at"}

// FuzzPageURL requests arbitrary paths and queries of the pages and of
// /api/v1/me as a user and as a Brand Admin: never a 5xx, never a stack
// trace or database error. Its seeds run with every `go test`.
func FuzzPageURL(f *testing.F) {
	_, pages, me := hostileWorld(f)
	for _, seed := range []string{
		"/", "/?page=-1", "/?page=99999999999999999999", "/surveys/" + hostileInt + "/EMD_h1", "/surveys/x/y", "/surveys/" + hostileInt + "/..%2f..%2fetc",
		"/surveys/%00/%ff", "/admin/surveys?q=%27%20OR%201=1--", "/admin/surveys?q=" + strings.Repeat("a", 5000), "/admin/surveys?page=0",
		"/admin/surveys/" + hostileInt + "/SV_h1?distribution=EMD_h1&status=SurveyFinished&page=2", "/admin/surveys/" + hostileInt + "/SV_h1?status=%3Cscript%3E",
		"/admin/distributions/" + hostileInt + "/EMD_h1", "/admin/distributions/00000000-0000-0000-0000-000000000000/EMD_h1",
		"/notifications?page=abc", "/static/..%2f..%2fgo.mod", "/static/app.css%00", "//evil.example/", "/%2e%2e/", "/api/v1/me/surveys",
		"/api/v1/me/notifications?limit=-1", "/api/v1/me/../../etc/passwd", "/admin/surveys/" + hostileInt + "/SV_h1?distribution=" + strings.Repeat("%", 3),
		// Issue 31, item 2: a NUL or an invalid UTF-8 byte that reaches a
		// query (a valid integration id, a signed-in user) made PostgreSQL
		// answer 22021 and the page 500.
		"/surveys/" + hostileInt + "/%00", "/surveys/" + hostileInt + "/EMD_%ff", "/admin/surveys?q=%00", "/admin/surveys?q=%ff",
		"/admin/surveys?q=a%C0%AFb", "/admin/surveys/" + hostileInt + "/SV_%00", "/admin/surveys/" + hostileInt + "/SV_h1?distribution=%00",
		"/admin/surveys/" + hostileInt + "/SV_h1?status=%ff", "/admin/surveys/" + hostileInt + "/SV_h1?after=%00%0A%00",
		"/admin/distributions/" + hostileInt + "/EMD_%00", "/admin/distributions/" + hostileInt + "/EMD_%ed%a0%80",
		"/api/v1/me/surveys?q=%00", "/notifications?page=%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") || !utf8.ValidString(target) {
			return
		}
		h := pages
		if strings.HasPrefix(target, "/api/v1/me") {
			h = me
		}
		for _, user := range []string{"viewer@example.com", "nobody@example.com", ""} {
			rec := asUser(h, user, target)
			if rec == nil {
				return // not a URL the server could receive
			}
			if rec.Code >= 500 {
				t.Fatalf("GET %q as %q: %d\n%s", target, user, rec.Code, rec.Body)
			}
			if l := containsAny(rec.Body.String(), leaks...); l != "" {
				t.Fatalf("GET %q as %q leaks %q:\n%s", target, user, l, rec.Body)
			}
		}
	})
}

// TestHostileTextIsRenderedSafely renders every page that shows a survey
// name, a subject, an email or a notification and checks the hostile text is
// shown as text: no injected element or attribute, no javascript: link, and
// right-to-left overrides isolated so they cannot reorder the page around
// them.
func TestHostileTextIsRenderedSafely(t *testing.T) {
	t.Parallel()
	_, pages, me := hostileWorld(t)
	targets := []string{"/", "/notifications", "/admin/surveys"}
	for i := range 3 {
		n := string(rune('1' + i))
		targets = append(targets, "/surveys/"+hostileInt+"/EMD_h"+n, "/admin/surveys/"+hostileInt+"/SV_h"+n,
			"/admin/surveys/"+hostileInt+"/SV_h"+n+"?distribution=EMD_h"+n, "/admin/distributions/"+hostileInt+"/EMD_h"+n)
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			rec := asUser(pages, "Viewer@Example.com", target)
			if rec.Code != http.StatusOK {
				t.Fatalf("%d", rec.Code)
			}
			body := rec.Body.String()
			for _, raw := range []string{`<script>alert`, `<img src=x`, `<i>x</i>`, `<b>Sales</b>`, `javascript:`, `"><script>`} {
				if strings.Contains(body, raw) {
					t.Errorf("the page holds %q unescaped", raw)
				}
			}
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			doc.Find("script").Each(func(_ int, s *goquery.Selection) {
				if src, ok := s.Attr("src"); !ok || !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
					t.Errorf("a script that is not one of ours: %s", goquery.NodeName(s))
				}
			})
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					if strings.HasPrefix(strings.ToLower(a.Key), "on") {
						t.Errorf("an event handler attribute %s=%q", a.Key, a.Val)
					}
				}
			})
			text := doc.Find("main").Text()
			shown := 0
			for _, name := range []string{scriptName, attrName, rtlName, htmlEmail} {
				if strings.Contains(text, name) {
					shown++
				}
			}
			if shown == 0 {
				t.Errorf("no hostile text is shown as text: the page proves nothing\n%s", text)
			}
			// Every text node holding a bidi override sits in an element that
			// isolates it (dir="auto", <bdi>), or it would reverse what follows.
			doc.Find("main *").Each(func(_ int, s *goquery.Selection) {
				own := ""
				for c := s.Nodes[0].FirstChild; c != nil; c = c.NextSibling {
					if c.Type == 1 { // html.TextNode
						own += c.Data
					}
				}
				if !strings.ContainsRune(own, '\u202E') {
					return
				}
				if goquery.NodeName(s) == "bdi" || s.AttrOr("dir", "") == "auto" || s.Closest("[dir=auto], bdi").Length() > 0 {
					return
				}
				t.Errorf("a right-to-left override is not isolated in <%s class=%q>", goquery.NodeName(s), s.AttrOr("class", ""))
			})
		})
	}
	t.Run("the JSON answers escape nothing away and stay JSON", func(t *testing.T) {
		for _, target := range []string{"/api/v1/me/surveys", "/api/v1/me/notifications"} {
			rec := asUser(me, "viewer@example.com", target)
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%s: %d %s", target, rec.Code, rec.Header().Get("Content-Type"))
			}
			if strings.Contains(rec.Body.String(), "<script>") || strings.Contains(rec.Body.String(), "javascript:") {
				t.Errorf("%s holds raw markup or a javascript: link: %s", target, rec.Body)
			}
		}
	})
}

// loopbackCanary is a server on loopback that must never be reached; it
// counts the requests it gets.
func loopbackCanary(t testing.TB) (srv *httptest.Server, port string, hits *atomic.Int64) {
	t.Helper()
	hits = &atomic.Int64{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, srv.URL[strings.LastIndex(srv.URL, ":")+1:], hits
}

// TestBaseURLsCannotReachInternalAddresses registers integrations through the
// admin API with base URLs aimed at internal addresses and checks each is
// refused before any call leaves, or (for a redirect off the host) that the
// redirect is not followed.
func TestBaseURLsCannotReachInternalAddresses(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	// A canary on loopback that must never be reached, and a "Qualtrics" on
	// an allowed host that redirects there.
	_, canaryPort, canaryHits := loopbackCanary(t)
	q := newSim(t, simOptions{spec: qualtricssim.Spec{Surveys: 1, Recipients: 5}})
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+canaryPort+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	metadata := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	defer metadata.Close()

	newAPI := func(allowed ...string) http.Handler {
		return api.New(api.Options{Service: manage.New(manage.Options{Store: st, Keyring: kr, AllowedHosts: allowed, Log: zap.NewNop(), VerifyTimeout: 3 * time.Second}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
	}
	strict, loopback := newAPI(), newAPI("127.0.0.1")
	cases := []struct {
		name    string
		h       http.Handler
		baseURL string
	}{
		{"the cloud metadata address", strict, "https://169.254.169.254/API/v3/"},
		{"the metadata address over http", strict, "http://169.254.169.254/latest/meta-data/"},
		{"a 10/8 address", strict, "https://10.0.0.1/API/v3/"},
		{"a 172.16/12 address", strict, "https://172.16.5.4/API/v3/"},
		{"a 192.168/16 address", strict, "https://192.168.1.1/API/v3/"},
		{"loopback by address", strict, "https://127.0.0.1/API/v3/"},
		{"loopback in decimal", strict, "https://2130706433/API/v3/"},
		{"loopback in octal", strict, "https://0177.0.0.1/API/v3/"},
		{"the unspecified address", strict, "https://0.0.0.0/API/v3/"},
		{"an IPv6 loopback literal", strict, "https://[::1]/API/v3/"},
		{"an IPv4-mapped IPv6 metadata literal", strict, "https://[::ffff:169.254.169.254]/API/v3/"},
		{"an IPv6 unique local literal", strict, "https://[fd00::1]/API/v3/"},
		{"an IPv6 literal on an allowing setup", loopback, "http://[::1]:" + canaryPort + "/API/v3/"},
		{"userinfo before a Qualtrics host", strict, "https://admin:secret@iad1.qualtrics.com/API/v3/"},
		{"a Qualtrics host as userinfo", strict, "https://iad1.qualtrics.com@169.254.169.254/API/v3/"},
		{"a look-alike suffix", strict, "https://iad1.qualtrics.com.evil.example/API/v3/"},
		{"a look-alike without the dot", strict, "https://evilqualtrics.com/API/v3/"},
		{"a look-alike top-level domain", strict, "https://iad1.qualtrics.co/API/v3/"},
		{"a trailing dot", strict, "https://iad1.qualtrics.com./API/v3/"},
		{"an encoded dot", strict, "https://iad1.qualtrics%2ecom/API/v3/"},
		{"a punycode look-alike", strict, "https://iad1.xn--qualtrcs-s4a.com/API/v3/"},
		{"plain http to Qualtrics", strict, "http://iad1.qualtrics.com/API/v3/"},
		{"another scheme", strict, "file:///etc/passwd"},
		{"gopher", strict, "gopher://127.0.0.1:6379/_INFO"},
		{"localhost with no allowed hosts", strict, "http://localhost:" + canaryPort + "/API/v3/"},
		{"localhost when only 127.0.0.1 is allowed", loopback, "http://localhost:" + canaryPort + "/API/v3/"},
		{"a redirect off the allowed host to loopback", loopback, redirector.URL + "/API/v3/"},
		{"a redirect to the metadata address", loopback, metadata.URL + "/API/v3/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := serveOnce(t, tc.h, "POST", "/integrations", map[string]any{"name": "Probe", "baseUrl": tc.baseURL, "token": q.token})
			t.Logf("%s → %d", tc.baseURL, r.status)
			if r.status == http.StatusCreated || r.status >= 500 && r.status != http.StatusBadGateway {
				t.Fatalf("base URL %s: %d %s", tc.baseURL, r.status, r.body)
			}
			if l := containsAny(string(r.body), append(leaks, q.token, "dial tcp", "lookup ")...); l != "" {
				t.Errorf("the answer leaks %q: %s", l, r.body)
			}
		})
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the loopback canary was reached %d times", n)
	}
	if ins, _ := st.ListIntegrations(context.Background()); len(ins) != 0 {
		t.Errorf("%d integrations were created", len(ins))
	}
	t.Run("the allowed simulator is accepted, so the refusals are the policy's", func(t *testing.T) {
		r := serveOnce(t, loopback, "POST", "/integrations", map[string]any{"name": "Sim", "baseUrl": q.baseURL(), "token": q.token})
		if r.status != http.StatusCreated {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// webhookWorld stores one integration with a notification and a webhook
// delivery of it pointing at url, and returns the integration and delivery ids.
func webhookWorld(t testing.TB, st *store.Store, url string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	id := newUUID()
	var deliveryID int64
	err := st.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, webhook_url)
			VALUES ($1, 'Hooks', 'Hooks', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active', $2)`, id, url); err != nil {
			return err
		}
		var nid int64
		if err := tx.QueryRow(ctx, `INSERT INTO notifications (integration_id, kind, dedupe_key, email, data, expires_at)
			VALUES ($1, 'new_survey', $2, 'ann@example.com', '{"surveyName":"Pulse"}', now() + interval '1 day') RETURNING id`, id, "hook:"+id).Scan(&nid); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO deliveries (notification_id, integration_id, channel, idempotency_key)
			VALUES ($1, $2, 'webhook', $3) RETURNING id`, nid, id, "hook:"+id).Scan(&deliveryID)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, deliveryID
}

// TestWebhooksCannotReachInternalAddresses: webhook URLs
// aimed at internal addresses are refused by PUT …/webhook, and a stored one
// (set before the check existed, or a name that resolves inward) is never
// dialled; no redirect is followed; and the recorded error is the same
// whatever happened, so the deliveries list is no port scanner.
func TestWebhooksCannotReachInternalAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	canary, canaryPort, canaryHits := loopbackCanary(t)

	h := api.New(api.Options{Service: manage.New(manage.Options{Store: st, Keyring: kr, Log: zap.NewNop(), SealWebhookSecret: func(id, secret string) (string, []byte, error) { return notify.SealWebhookSecret(kr, id, secret) }}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
	in, _ := webhookWorld(t, st, "")
	t.Run("PUT …/webhook refuses internal destinations", func(t *testing.T) {
		for _, u := range []string{
			"http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/", "http://[::1]:6379/", "http://10.0.0.1/x",
			"http://127.0.0.1:" + canaryPort + "/internal-admin/only", "http://localhost:" + canaryPort + "/", "http://api.localhost/",
			"http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",
			"http://[2002:a9fe:a9fe::1]/", "http://[fd00::1]/", "http://192.168.1.1/", "http://100.64.0.1/", "http://0.0.0.0/",
			"http://198.18.0.1/", "http://240.0.0.1/",
		} {
			r := serveOnce(t, h, "PUT", "/integrations/"+in+"/webhook", map[string]any{"url": u})
			if r.status != http.StatusBadRequest {
				t.Errorf("PUT webhook %s: %d %s", u, r.status, r.body)
			}
		}
		if wh, err := st.GetWebhook(ctx, in); err != nil || wh.URL != "" {
			t.Errorf("a webhook was stored: %q %v", wh.URL, err)
		}
		// A public destination is accepted, so the refusals are the policy's.
		if r := serveOnce(t, h, "PUT", "/integrations/"+in+"/webhook", map[string]any{"url": "https://hooks.example.com/services/T/B/x"}); r.status != http.StatusNoContent {
			t.Errorf("a public webhook: %d %s", r.status, r.body)
		}
	})
	// Issue 31 (info): SIIT's IPv4-translated form of 127.0.0.1 was
	// accepted, and so was plain http to any public host.
	t.Run("PUT …/webhook refuses SIIT addresses and plain http to a host not allowed", func(t *testing.T) {
		for _, u := range []string{"https://[::ffff:0:7f00:1]/", "https://[::ffff:0:a9fe:a9fe]/latest/meta-data/",
			"http://hooks.example.com/services/T/B/x", "HTTP://hooks.example.com/x"} {
			r := serveOnce(t, h, "PUT", "/integrations/"+in+"/webhook", map[string]any{"url": u})
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"url"`) {
				t.Errorf("PUT webhook %s: %d %s", u, r.status, r.body)
			}
		}
		if r := serveOnce(t, h, "PUT", "/integrations/"+in+"/webhook", map[string]any{"url": "http://hooks.example.com/x"}); !strings.Contains(string(r.body), "https") {
			t.Errorf("the refusal of plain http does not say to use https: %s", r.body)
		}
		allowed := api.New(api.Options{Service: manage.New(manage.Options{Store: st, Keyring: kr, Log: zap.NewNop(), WebhookAllowedHosts: []string{"127.0.0.1"}}), Keyring: kr, AdminTokens: []string{adminToken}, Log: zap.NewNop()})
		if r := serveOnce(t, allowed, "PUT", "/integrations/"+in+"/webhook", map[string]any{"url": canary.URL + "/hook"}); r.status != http.StatusNoContent {
			t.Errorf("plain http to an allowed host: %d %s", r.status, r.body)
		}
	})

	deliver := func(t *testing.T, n *notify.Notifier, url string) string {
		t.Helper()
		_, id := webhookWorld(t, st, url)
		_ = n.Deliver(ctx, id, false, time.Now())
		var status, lastError string
		if err := st.Pool().QueryRow(ctx, `SELECT status, last_error FROM deliveries WHERE id = $1`, id).Scan(&status, &lastError); err != nil {
			t.Fatal(err)
		}
		if status == "sent" {
			t.Fatalf("the delivery to %s was sent", url)
		}
		return lastError
	}
	t.Run("a stored internal destination is never dialled and its error says nothing", func(t *testing.T) {
		n := notify.New(notify.Options{Store: st, Keyring: kr})
		open := deliver(t, n, "http://localhost:"+canaryPort+"/internal-admin/only")
		closed := deliver(t, n, "http://127.0.0.1:1/")
		metadata := deliver(t, n, "http://169.254.169.254/latest/meta-data/")
		for _, e := range []string{open, closed, metadata} {
			if l := containsAny(e, "dial tcp", "connection refused", "127.0.0.1", "169.254", "forbidden", "lookup"); l != "" || e != open {
				t.Errorf("last_error %q tells the destinations apart (%q)", e, l)
			}
		}
		if canaryHits.Load() != 0 {
			t.Errorf("the loopback canary was reached %d times", canaryHits.Load())
		}
	})
	t.Run("a stored plain http webhook to a host not allowed is never sent", func(t *testing.T) {
		n := notify.New(notify.Options{Store: st, Keyring: kr})
		if e := deliver(t, n, "http://hooks.example.com/services/T/B/x"); e != "webhook: the destination is unreachable" {
			t.Errorf("last_error %q", e)
		}
	})
	t.Run("a redirect is not followed, even to an allowed host", func(t *testing.T) {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, canary.URL+"/internal-admin/only", http.StatusTemporaryRedirect)
		}))
		defer redirector.Close()
		n := notify.New(notify.Options{Store: st, Keyring: kr, WebhookAllowedHosts: []string{"127.0.0.1"}})
		if e := deliver(t, n, redirector.URL+"/hook"); e != "webhook: HTTP 307" {
			t.Errorf("last_error %q, want the redirect answered as a failure", e)
		}
		if canaryHits.Load() != 0 {
			t.Errorf("the redirect was followed to the canary (%d hits)", canaryHits.Load())
		}
	})
	t.Run("an allowed host receives the delivery, so the refusals are the guard's", func(t *testing.T) {
		n := notify.New(notify.Options{Store: st, Keyring: kr, WebhookAllowedHosts: []string{"127.0.0.1"}})
		_, id := webhookWorld(t, st, canary.URL+"/hook")
		if err := n.Deliver(ctx, id, false, time.Now()); err != nil {
			t.Fatal(err)
		}
		if canaryHits.Load() != 1 {
			t.Errorf("the allowed receiver got %d requests, want 1", canaryHits.Load())
		}
	})
}

// TestSignedEventsCannotBeReplayedUnderAnotherTopic:
// Qualtrics signs MSG, not Topic. One legitimate completedResponse callback
// is posted, then its MSG and HMAC are replayed as controlpanel.deactivateSurvey
// (which deactivated the survey before), as partialResponse and
// startedRecipientSession, and a correctly signed MSG three days old is
// posted. Only the first is stored; the survey stays active and the
// recipient finished.
func TestSignedEventsCannotBeReplayedUnderAnotherTopic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	id, now := newUUID(), time.Now().UTC().Truncate(time.Second)
	const sharedKey = "replay-shared-key-0123456789abcdef"
	keyID, sealed, err := seal.SealSecret(kr, seal.EventsKey, id, []byte(sharedKey))
	if err != nil {
		t.Fatal(err)
	}
	ex := func(sql string, args ...any) {
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	ex(`INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, events_enabled, brand_id, events_key_id, events_key_sealed)
		VALUES ($1, 'Events', 'Events', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active', true, 'brand1', $2, $3)`, id, keyID, sealed)
	ex(`INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date) VALUES ($1, 'SV_r', 'Pulse', true, $2)`, id, now.Add(72*time.Hour))
	for _, d := range []string{"EMD_r", "EMD_s"} {
		ex(`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, send_date, created_date, link_expiration, sent)
			VALUES ($1, $2, 'SV_r', 'Invite', $3, $3, $4, 1)`, id, d, now.Add(-time.Hour), now.Add(48*time.Hour))
	}
	ex(`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at)
		VALUES ($1, 'EMD_r', 'CID_a', 'SV_r', 'alice@example.com', 'Success', $2), ($1, 'EMD_s', 'CID_b', 'SV_r', 'bob@example.com', 'Success', $2)`, id, now.Add(-time.Hour))

	svc, err := events.New(events.Options{Store: st, Keyring: kr, KeyCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(svc.Receiver())
	defer hooks.Close()
	post := func(topic, msg string) (int, string) {
		form := url.Values{"Topic": {topic}, "MSG": {msg}, "HMAC": {qualtricssim.SignEvent(sharedKey, []byte(msg))}}
		resp, err := http.Post(hooks.URL+"/hooks/qualtrics/"+id, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	message := func(contact, dist, response string, at time.Time) string {
		return fmt.Sprintf(`{"SurveyID":"SV_r","ResponseID":%q,"RecipientID":%q,"DistributionID":%q,"CompletedDate":%q,"BrandID":"brand1","Status":"Complete"}`,
			response, contact, dist, at.Format(time.RFC3339))
	}
	active := func() (bool, int) {
		var on bool
		if err := st.Pool().QueryRow(ctx, `SELECT is_active FROM surveys WHERE integration_id = $1 AND qualtrics_id = 'SV_r'`, id).Scan(&on); err != nil {
			t.Fatal(err)
		}
		mine, err := st.MyActiveSurveys(ctx, "bob@example.com", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return on, len(mine)
	}
	if on, n := active(); !on || n != 1 {
		t.Fatalf("before: active %v, bob's list %d", on, n)
	}

	legit := message("CID_a", "EMD_r", "R_1", now)
	if code, body := post("surveyengine.completedResponse.SV_r", legit); code != http.StatusAccepted {
		t.Fatalf("the legitimate callback: %d %s", code, body)
	}
	tries := []struct{ name, topic, msg string }{
		{"its MSG as controlpanel.deactivateSurvey", "controlpanel.deactivateSurvey", legit},
		{"its MSG as controlpanel.activateSurvey", "controlpanel.activateSurvey", legit},
		{"its MSG as partialResponse", "surveyengine.partialResponse.SV_r", legit},
		{"its MSG as startedRecipientSession", "surveyengine.startedRecipientSession.SV_r", legit},
		{"its MSG again, as itself", "surveyengine.completedResponse.SV_r", legit},
		{"its MSG under another survey's topic", "surveyengine.completedResponse.SV_other", legit},
		{"a signed MSG three days old", "surveyengine.completedResponse.SV_r", message("CID_b", "EMD_s", "R_2", now.Add(-72*time.Hour))},
		{"a signed MSG without a date", "surveyengine.completedResponse.SV_r",
			`{"SurveyID":"SV_r","ResponseID":"R_3","RecipientID":"CID_b","DistributionID":"EMD_s","BrandID":"brand1","Status":"Complete"}`},
		{"a control-panel MSG as a completed response", "surveyengine.completedResponse.SV_r",
			fmt.Sprintf(`{"SurveyID":"SV_r","CompletedDate":%q,"BrandID":"brand1","Status":"Complete"}`, now.Format(time.RFC3339))},
	}
	for _, tc := range tries {
		code, body := post(tc.topic, tc.msg)
		t.Logf("%s → %d %s", tc.name, code, strings.TrimSpace(body))
		if code == http.StatusAccepted {
			t.Errorf("%s was accepted", tc.name)
		}
	}
	if _, err := svc.ReapplyPending(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Errorf("%d events stored, want the legitimate one only", stored)
	}
	if on, n := active(); !on || n != 1 {
		t.Errorf("after the replays: survey active %v, bob's list has %d surveys, want true and 1", on, n)
	}
	var status string
	if err := st.Pool().QueryRow(ctx, `SELECT status FROM recipients WHERE integration_id = $1 AND contact_id = 'CID_a'`, id).Scan(&status); err != nil || status != "SurveyFinished" {
		t.Errorf("alice's recipient is %q (%v), want SurveyFinished from the legitimate event", status, err)
	}
}

// devPages serves the pages in dev sign-in mode, ann@example.com its one user.
func devPages(t testing.TB, public *url.URL) *web.Server {
	t.Helper()
	srv, err := web.New(web.Options{Store: storetest.New(t), AuthMode: web.AuthDev, AllowDevAuth: true,
		DevUsers: []string{"ann@example.com"}, PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestRedirectTargetsStayOnThisSite: the next parameter of
// the dev sign-in, of the language switch, and of GET /signin (stored for
// after the identity provider, or put in the sign-in form) never sends the
// browser to another site. Browsers drop tabs and newlines from URLs and read
// "\" as "/", so "/<TAB>/evil.example" is "//evil.example".
func TestRedirectTargetsStayOnThisSite(t *testing.T) {
	t.Parallel()
	srv := devPages(t, nil)
	h := srv.Handler()
	hostile := []string{
		"/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\x00/evil.example", "/\x7f/evil.example", "/\x1f/evil.example",
		"/\\evil.example", "/\\/evil.example", "/a\\..\\\\evil.example", "//evil.example", "///evil.example", "https://evil.example/",
		"javascript:alert(1)", "evil.example", "/\t\t/evil.example/%2e%2e", "",
	}
	post := func(path string, form url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, next := range hostile {
		for name, rec := range map[string]*httptest.ResponseRecorder{
			"POST /signin/dev": post("/signin/dev", url.Values{"email": {"ann@example.com"}, "next": {next}}),
			"POST /lang":       post("/lang", url.Values{"lang": {"fr"}, "next": {next}}),
		} {
			if strings.ContainsRune(next, 0) {
				// Issue 31: a NUL in any parameter is refused before any
				// handler (400), so nothing redirects anywhere.
				if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
					t.Errorf("%s next=%q: %d Location %q, want 400 and no redirect", name, next, rec.Code, rec.Header().Get("Location"))
				}
				continue
			}
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
				t.Errorf("%s next=%q: %d Location %q, want 303 to /", name, next, rec.Code, rec.Header().Get("Location"))
			}
		}
		rec := asUser(h, "", "/signin?next="+url.QueryEscape(next))
		if strings.ContainsRune(next, 0) {
			if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), "evil.example") {
				t.Errorf("GET /signin?next=%q: %d, want 400 without the value", next, rec.Code)
			}
			continue
		}
		doc, err := goquery.NewDocumentFromReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := doc.Find(`form[action="/signin/dev"] input[name="next"]`).Attr("value"); rec.Code != http.StatusOK || !ok || v != "/" {
			t.Errorf("GET /signin?next=%q: %d, the form carries next=%q", next, rec.Code, v)
		}
	}
	// A path of this site survives, so the refusals are the check's.
	for _, next := range []string{"/notifications?page=2", "/surveys/a/b#top", "/admin/surveys?q=a%20b"} {
		if rec := post("/lang", url.Values{"lang": {"en"}, "next": {next}}); rec.Header().Get("Location") != next {
			t.Errorf("POST /lang next=%q: Location %q", next, rec.Header().Get("Location"))
		}
	}
}

// TestHeaderSignInTrustsOneValueAndOneSpelling (issue 18, items 4 and 5): in
// header mode a trusted proxy's request with the email header twice (or a
// list in one) signs in nobody; an address that is not ASCII signs in nobody
// either, in the pages, /api/v1/me and the admin API, and the sync stores it
// with no email: "\u212Aate@example.com" (a Kelvin sign) used to fold onto
// kate@example.com and see her surveys.
func TestHeaderSignInTrustsOneValueAndOneSpelling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const kelvin = "\u212Aate@example.com"
	q := newSim(t, simOptions{seed: 18, spec: qualtricssim.Spec{Surveys: 1, Recipients: 5}})
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	s := newStack(t, st, kr, stackOptions{workers: 1})
	in := createThroughAPI(t, s.srv.URL, map[string]any{"name": "Sales", "baseUrl": q.baseURL(), "token": q.token})
	addInvitation(t, q, "kate@example.com", "Kate's own survey")
	addInvitation(t, q, kelvin, "Kelvin's survey")
	if run, _ := syncThroughAPI(t, s.srv.URL, in.ID, "full", time.Minute); run.Status != "succeeded" {
		t.Fatalf("sync: %s %q", run.Status, run.Error)
	}

	get := func(target string, emails ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		for _, e := range emails {
			req.Header.Add("X-Forwarded-Email", e)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/api/v1/me/surveys", "kate@example.com"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Kate's own survey") {
		t.Fatalf("kate herself: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct {
		name   string
		emails []string
	}{
		{"two headers, the victim first", []string{"kate@example.com", "mallory@example.com"}},
		{"two headers, the victim last", []string{"mallory@example.com", "kate@example.com"}},
		{"a list in one header", []string{"kate@example.com, mallory@example.com"}},
		{"a Kelvin sign for the K", []string{kelvin}},
		{"a fullwidth letter", []string{"\uff4bate@example.com"}},
	} {
		for _, target := range []string{"/", "/api/v1/me/surveys"} {
			if rec := get(target, tc.emails...); rec.Code != http.StatusUnauthorized {
				t.Errorf("%s, GET %s: %d, want 401\n%.300s", tc.name, target, rec.Code, rec.Body)
			}
		}
	}
	t.Run("the admin API refuses a Brand Admin that is not ASCII", func(t *testing.T) {
		r := call(t, nil, "PUT", s.srv.URL+"/api/v1/integrations/"+in.ID+"/brand-admins/"+url.PathEscape(kelvin), nil, adminToken)
		if r.status != http.StatusBadRequest {
			t.Errorf("PUT brand admin %q: %d %s", kelvin, r.status, r.body)
		}
		if admins, _ := st.ListBrandAdmins(ctx, in.ID); len(admins) != 0 {
			t.Errorf("brand admins %v", admins)
		}
	})
	t.Run("the sync stores the address with no email, so it is nobody's survey", func(t *testing.T) {
		var emails []string
		rows, err := st.Pool().Query(ctx, `SELECT r.email FROM recipients r JOIN surveys s ON s.integration_id = r.integration_id AND s.qualtrics_id = r.survey_id
			WHERE r.integration_id = $1 AND s.name = 'Kelvin''s survey'`, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if emails, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(emails) != 1 || emails[0] != "" {
			t.Errorf("the Kelvin recipient is stored as %q (%v), want one row with no email", emails, err)
		}
		mine, err := st.MyActiveSurveys(ctx, "kate@example.com", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mine {
			if m.SurveyName != "Kate's own survey" {
				t.Errorf("kate sees %q", m.SurveyName)
			}
		}
		if len(mine) != 1 {
			t.Errorf("kate sees %d surveys, want her own only", len(mine))
		}
	})
}

// countingEventsStore counts the queries the callback receiver makes to
// decide whether an id is an integration receiving events.
type countingEventsStore struct {
	*store.Store
	lookups atomic.Int64
}

func (c *countingEventsStore) GetEventsKey(ctx context.Context, id string) (store.EventsKey, error) {
	c.lookups.Add(1)
	return c.Store.GetEventsKey(ctx, id)
}

func (c *countingEventsStore) EventsReceivingIntegrationIDs(ctx context.Context) ([]string, error) {
	c.lookups.Add(1)
	return c.Store.EventsReceivingIntegrationIDs(ctx)
}

// TestCallbackFloodCostsNeitherLogsNorQueries: 3,000
// unauthenticated callbacks to /hooks/qualtrics/{id} with made-up ids
// (malformed, 5,000 characters long, and well-formed random UUIDs) write a
// bounded number of log lines, each short, make a bounded number of
// queries, and do not spend the budget of a real integration, whose signed
// callback is accepted in the middle of the flood.
func TestCallbackFloodCostsNeitherLogsNorQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	id := newUUID()
	const sharedKey = "flood-shared-key-0123456789abcdef"
	keyID, sealed, err := seal.SealSecret(kr, seal.EventsKey, id, []byte(sharedKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, events_enabled, events_key_id, events_key_sealed)
		VALUES ($1, 'Events', 'Events', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active', true, $2, $3)`, id, keyID, sealed); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	counting := &countingEventsStore{Store: st}
	svc, err := events.New(events.Options{Store: counting, Keyring: kr, Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	h := svc.Receiver()
	post := func(target, topic, msg, mac string) int {
		form := url.Values{"Topic": {topic}, "MSG": {msg}, "HMAC": {mac}}
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	legit := func() int {
		msg := fmt.Sprintf(`{"SurveyID":"SV_f","ResponseID":"R_%d","RecipientID":"CID_f","DistributionID":"EMD_f","CompletedDate":%q,"Status":"Complete"}`,
			time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339))
		return post("/hooks/qualtrics/"+id, "surveyengine.completedResponse.SV_f", msg, qualtricssim.SignEvent(sharedKey, []byte(msg)))
	}
	if code := legit(); code != http.StatusAccepted {
		t.Fatalf("the real integration before the flood: %d", code)
	}
	before := counting.lookups.Load()
	start := time.Now()
	statuses := map[int]int{}
	long := strings.Repeat("x", 5000)
	for i := range 3000 {
		var target string
		switch i % 3 {
		case 0:
			target = "/hooks/qualtrics/not-an-id-" + fmt.Sprint(i)
		case 1:
			target = "/hooks/qualtrics/" + long
		default:
			target = "/hooks/qualtrics/" + newUUID()
		}
		statuses[post(target, "surveyengine.completedResponse.SV_f", `{}`, strings.Repeat("0", 128))]++
		if i == 1500 {
			if code := legit(); code != http.StatusAccepted {
				t.Errorf("the real integration in the middle of the flood: %d", code)
			}
		}
	}
	elapsed := time.Since(start)
	queries := counting.lookups.Load() - before
	rejected := logs.FilterMessage("event callback rejected").All()
	t.Logf("3,000 made-up callbacks in %v: statuses %v, %d queries, %d rejection log lines", elapsed.Round(time.Millisecond), statuses, queries, len(rejected))
	if statuses[http.StatusAccepted] != 0 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 3000 {
		t.Errorf("statuses %v, want only 401 and 429", statuses)
	}
	// The strangers' budget: a burst of 100, then 20 a second.
	if limit := int64(100 + 20*elapsed.Seconds() + 2); queries > limit {
		t.Errorf("%d queries for made-up ids, want at most %d", queries, limit)
	}
	if limit := 10 + int(elapsed.Seconds()) + 1; len(rejected) > limit {
		t.Errorf("%d rejection log lines, want at most %d", len(rejected), limit)
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && len(s) > 100 {
				t.Errorf("a log line quotes %d characters in %s", len(s), k)
			}
		}
	}
}

// TestFormPostsAreSmallAndURLEncoded: the pages' POST
// routes read at most 16 KiB of url-encoded form. A 5 MB multipart body to
// POST /lang got 303 before, having been read whole.
func TestFormPostsAreSmallAndURLEncoded(t *testing.T) {
	t.Parallel()
	srv := devPages(t, nil)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var multipartBody strings.Builder
	multipartBody.WriteString("--b\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nfr\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n")
	multipartBody.WriteString(strings.Repeat("A", 5<<20))
	multipartBody.WriteString("\r\n--b--\r\n")
	big := "lang=fr&pad=" + strings.Repeat("a", 20<<10)
	for _, tc := range []struct {
		name, path, ctype string
		body              io.Reader
		want              int
	}{
		{"a 5 MB multipart body to /lang", "/lang", "multipart/form-data; boundary=b", strings.NewReader(multipartBody.String()), http.StatusRequestEntityTooLarge},
		{"a small multipart body to /lang", "/lang", "multipart/form-data; boundary=b", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nfr\r\n--b--\r\n"), http.StatusUnsupportedMediaType},
		{"a 20 KiB form to /lang", "/lang", "application/x-www-form-urlencoded", strings.NewReader(big), http.StatusRequestEntityTooLarge},
		{"a 20 KiB form without a length (chunked)", "/lang", "application/x-www-form-urlencoded", io.MultiReader(strings.NewReader(big)), http.StatusRequestEntityTooLarge},
		{"a 20 KiB form to /signin/dev", "/signin/dev", "application/x-www-form-urlencoded", strings.NewReader("email=ann%40example.com&" + big), http.StatusRequestEntityTooLarge},
		{"a 20 KiB form to /notifications/read", "/notifications/read", "application/x-www-form-urlencoded", strings.NewReader(big), http.StatusRequestEntityTooLarge},
		{"JSON to /signout", "/signout", "application/json", strings.NewReader(`{}`), http.StatusUnsupportedMediaType},
		{"a small form to /lang", "/lang", "application/x-www-form-urlencoded", strings.NewReader("lang=fr&next=%2Fnotifications"), http.StatusSeeOther},
	} {
		req, err := http.NewRequest(http.MethodPost, ts.URL+tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := noRedirect.Do(req)
		if err != nil {
			// The server may close the connection on a body it refuses to read.
			t.Logf("%s: %v", tc.name, err)
			if tc.want == http.StatusSeeOther {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestHTTPSDeploymentsPinTransportAndCookies: with an
// https MICROAPPS_PUBLIC_URL every answer carries Strict-Transport-Security,
// the cookies are "__Host-" cookies (Secure, path /, no Domain: a sibling
// subdomain or a plain-http page cannot plant them), and every answer, the
// API's JSON included, carries nosniff. Over http there is no HSTS.
func TestHTTPSDeploymentsPinTransportAndCookies(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	public, _ := url.Parse("https://surveys.example.com")
	secure := newStack(t, st, kr, stackOptions{publicURL: public})
	plain := newStack(t, st, kr, stackOptions{})
	type probe struct{ method, path, bearer, user string }
	probes := []probe{
		{"GET", "/", "", "ann@example.com"},
		{"GET", "/api/v1/me/surveys", "", "ann@example.com"},
		{"GET", "/api/v1/integrations", adminToken, ""},
		{"GET", "/api/v1/integrations/" + newUUID(), adminToken, ""},
		{"GET", "/api/v1/openapi.yaml", "", ""},
		{"POST", "/hooks/qualtrics/" + newUUID(), "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/no-such-page", "", ""},
	}
	do := func(s *stack, p probe) http.Header {
		req := httptest.NewRequest(p.method, p.path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		if p.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+p.bearer)
		}
		if p.user != "" {
			req.Header.Set("X-Forwarded-Email", p.user)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		return rec.Header()
	}
	for _, p := range probes {
		h := do(secure, p)
		if got := h.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") || got == "max-age=0" {
			t.Errorf("https %s %s: Strict-Transport-Security %q", p.method, p.path, got)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("https %s %s (%s): X-Content-Type-Options %q", p.method, p.path, h.Get("Content-Type"), got)
		}
		h = do(plain, p)
		if got := h.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("http %s %s: Strict-Transport-Security %q", p.method, p.path, got)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("http %s %s (%s): X-Content-Type-Options %q", p.method, p.path, h.Get("Content-Type"), got)
		}
	}

	t.Run("the session and language cookies are __Host- cookies over https", func(t *testing.T) {
		for _, tc := range []struct {
			public *url.URL
			prefix string
		}{{public, "__Host-"}, {nil, ""}} {
			h := devPages(t, tc.public).Handler()
			cookies := map[string]*http.Cookie{}
			for _, form := range []url.Values{{"email": {"ann@example.com"}}, {"lang": {"fr"}}} {
				path := "/signin/dev"
				if form.Has("lang") {
					path = "/lang"
				}
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				for _, c := range rec.Result().Cookies() {
					cookies[c.Name] = c
				}
			}
			for _, name := range []string{"microapps_session", "microapps_lang"} {
				c := cookies[tc.prefix+name]
				if c == nil {
					t.Errorf("public URL %v: no cookie %s%s among %v", tc.public, tc.prefix, name, cookies)
					continue
				}
				if tc.prefix != "" && (!c.Secure || c.Path != "/" || c.Domain != "") {
					t.Errorf("%s: Secure %v, Path %q, Domain %q; a __Host- cookie needs Secure, / and no Domain", c.Name, c.Secure, c.Path, c.Domain)
				}
			}
			// The prefixed language cookie is the one read back.
			req := httptest.NewRequest(http.MethodGet, "/signin", nil)
			req.AddCookie(&http.Cookie{Name: tc.prefix + "microapps_lang", Value: "fr"})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !strings.Contains(rec.Body.String(), `lang="fr"`) {
				t.Errorf("public URL %v: the %smicroapps_lang cookie is not read back", tc.public, tc.prefix)
			}
		}
	})
}

// TestNULsFromQualtricsDoNotBreakASync (issue 31, info): a survey name, a
// subject and a recipient's name holding a NUL (sent by Qualtrics as
// \u0000) made the unit's COPY fail on every run, PostgreSQL refusing NUL in
// text. The NULs are now stripped at decoding: the sync succeeds and stores
// the text without them.
func TestNULsFromQualtricsDoNotBreakASync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newSim(t, simOptions{seed: 31, spec: qualtricssim.Spec{Surveys: 2, Recipients: 20, Emails: []string{"alice@example.com"}}})
	st := storetest.New(t)
	kr, _ := newKeyring(t)
	s := newStack(t, st, kr, stackOptions{workers: 2})
	now := time.Now().UTC().Truncate(time.Second)
	sv, err := q.sim.AddSurvey(q.brand.ID, qualtricssim.Survey{Name: "Pulse\x00 Q3", IsActive: true,
		CreationDate: now, LastModifiedDate: now, StartDate: now, EndDate: now.Add(10 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, RequestType: "Invite", SendDate: now,
		LinkExpiration: now.Add(7 * 24 * time.Hour), Headers: qualtricssim.Headers{Subject: "Tell\x00 us"},
		Recipients: []qualtricssim.Recipient{{Email: "alice@example.com", FirstName: "Al\x00ice", LastName: "B", Status: "Success", SentAt: now}}}); err != nil {
		t.Fatal(err)
	}
	in := createThroughAPI(t, s.srv.URL, map[string]any{"name": "NUL", "baseUrl": q.baseURL(), "token": q.token})
	run, _ := syncThroughAPI(t, s.srv.URL, in.ID, "full", time.Minute)
	if run.Status != "succeeded" || run.Error != "" {
		t.Fatalf("sync: %s %q", run.Status, run.Error)
	}
	var name, subject, first string
	if err := st.Pool().QueryRow(ctx, `SELECT s.name, d.subject, r.first_name FROM surveys s
		JOIN distributions d ON d.integration_id = s.integration_id AND d.survey_id = s.qualtrics_id
		JOIN recipients r ON r.integration_id = d.integration_id AND r.distribution_id = d.qualtrics_id
		WHERE s.integration_id = $1 AND s.qualtrics_id = $2`, in.ID, sv.ID).Scan(&name, &subject, &first); err != nil {
		t.Fatalf("the survey with NULs was not stored: %v", err)
	}
	if name != "Pulse Q3" || subject != "Tell us" || first != "Alice" {
		t.Errorf("stored %q, %q, %q; want the text without its NULs", name, subject, first)
	}
	var failedUnits int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE integration_id = $1 AND (status <> 'succeeded' OR warnings::text LIKE '%unit%')`,
		in.ID).Scan(&failedUnits); err != nil {
		t.Fatal(err)
	}
	if failedUnits != 0 {
		t.Errorf("%d runs failed or warned about a unit", failedUnits)
	}
}
