package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/internal/problem"
	"github.com/microapps/microapps/store"
)

// nopStore answers every read with nothing, for tests that never reach data.
type nopStore struct{}

func (nopStore) MyActiveSurveys(context.Context, string, time.Time) ([]store.MySurvey, error) {
	return nil, nil
}
func (nopStore) MyActiveSurveysAndSummary(context.Context, string, time.Time) ([]store.MySurvey, store.UserSummary, error) {
	return nil, store.UserSummary{}, nil
}
func (nopStore) MySurveyDetail(context.Context, string, string, string, time.Time) (store.MySurveyDetail, error) {
	return store.MySurveyDetail{}, store.ErrNotFound
}
func (nopStore) OpenSurveys(context.Context, store.OpenSurveysQuery, time.Time) (store.OpenSurveysPage, error) {
	return store.OpenSurveysPage{}, nil
}
func (nopStore) SurveyResults(context.Context, store.SurveyResultsQuery, time.Time) (store.SurveyResultsPage, error) {
	return store.SurveyResultsPage{}, store.ErrNotFound
}
func (nopStore) DistributionData(context.Context, string, string, string, time.Time) (store.DistributionData, error) {
	return store.DistributionData{}, store.ErrNotFound
}
func (nopStore) FeedPage(context.Context, string, time.Time, int) (store.FeedPage, error) {
	return store.FeedPage{}, nil
}
func (nopStore) Feed(context.Context, string, time.Time, int) (store.FeedPage, error) {
	return store.FeedPage{}, nil
}
func (nopStore) UserSummary(context.Context, string, time.Time) (store.UserSummary, error) {
	return store.UserSummary{}, nil
}
func (nopStore) MarkRead(context.Context, string, int64, time.Time) (int64, error) { return 0, nil }

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	pages := map[string]string{
		"details A/EMD_1":       "/surveys/" + intA + "/EMD_1",
		"details A/EMD_1R":      "/surveys/" + intA + "/EMD_1R",
		"details C/EMD_C1":      "/surveys/" + intC + "/EMD_C1",
		"details bad uuid":      "/surveys/not-a-uuid/EMD_1",
		"open surveys":          "/admin/surveys",
		"results A/SV_1":        "/admin/surveys/" + intA + "/SV_1",
		"results B/SV_B1":       "/admin/surveys/" + intB + "/SV_B1",
		"results C/SV_C1":       "/admin/surveys/" + intC + "/SV_C1",
		"results A/missing":     "/admin/surveys/" + intA + "/SV_missing",
		"distribution A/EMD_1":  "/admin/distributions/" + intA + "/EMD_1",
		"distribution B/EMD_B1": "/admin/distributions/" + intB + "/EMD_B1",
		"distribution C/EMD_C1": "/admin/distributions/" + intC + "/EMD_C1",
		"my surveys":            "/",
		"notifications":         "/notifications",
		"unknown path":          "/no/such/page",
	}
	ok := map[string]map[string]bool{
		"alice@example.com": {"details A/EMD_1": true, "details A/EMD_1R": true, "my surveys": true, "notifications": true},
		"bob@example.com": {"details A/EMD_1": true, "my surveys": true, "notifications": true, "open surveys": true,
			"results B/SV_B1": true, "distribution B/EMD_B1": true},
		"admin@example.com": {"my surveys": true, "notifications": true, "open surveys": true, "results A/SV_1": true,
			"results B/SV_B1": true, "distribution A/EMD_1": true, "distribution B/EMD_B1": true},
		"carol@example.com": {"details C/EMD_C1": true, "my surveys": true, "notifications": true},
	}
	var notFoundBody string
	for user, allowed := range ok {
		for name, path := range pages {
			want := http.StatusNotFound
			if allowed[name] {
				want = http.StatusOK
			}
			rec := get(t, h, user, path)
			if rec.Code != want {
				t.Errorf("%s GET %s (%s): %d, want %d", user, path, name, rec.Code, want)
			}
			if rec.Code == http.StatusNotFound && user == "carol@example.com" {
				// A hidden item and a missing page must be indistinguishable.
				doc := parse(t, rec)
				doc.Find(`input[name="next"]`).Remove() // the language switch returns to the current path
				body, _ := doc.Html()
				if notFoundBody == "" {
					notFoundBody = body
				} else if body != notFoundBody {
					t.Errorf("404 for %s differs from another 404", path)
				}
			}
		}
	}
}

func TestHeaderModeTrustsOnlyTheProxy(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{Store: nopStore{}, AuthMode: AuthHeader, AuthHeader: "X-Auth-Email",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	cases := []struct {
		name, remote, email string
		want                int
	}{
		{"a trusted proxy with an email", "10.1.2.3:5555", "alice@example.com", 200},
		{"a trusted IPv6 proxy", "[::1]:5555", "alice@example.com", 200},
		{"a trusted proxy mapped into IPv6", "[::ffff:10.0.0.1]:5555", "alice@example.com", 200},
		{"an untrusted peer setting the header", "203.0.113.9:5555", "alice@example.com", 401},
		{"a trusted proxy without the header", "10.1.2.3:5555", "", 401},
		{"a trusted proxy with garbage", "10.1.2.3:5555", "not an email", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.remote
			if c.email != "" {
				req.Header.Set("X-Auth-Email", c.email)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d", rec.Code, c.want)
			}
			if c.want == 401 && !strings.Contains(rec.Body.String(), "Sign-in required") {
				t.Errorf("401 page body: %s", rec.Body.String())
			}
		})
	}
	// The API answers with problem+json.
	req := httptest.NewRequest("GET", "/api/v1/me/surveys", nil)
	req.RemoteAddr = "203.0.113.9:5555"
	req.Header.Set("X-Auth-Email", "alice@example.com")
	rec := httptest.NewRecorder()
	srv.MeAPI().ServeHTTP(rec, req)
	var p problem.Problem
	if rec.Code != 401 || rec.Header().Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != 401 || p.Title == "" {
		t.Errorf("API 401: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestMeAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := f.headerServer(t).MeAPI()
	for _, prefix := range []string{"", "/api/v1/me"} {
		rec := get(t, api, "alice@example.com", prefix+"/surveys")
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s/surveys: %d %s", prefix, rec.Code, rec.Body)
		}
		var surveys struct {
			Items []meSurvey `json:"items"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &surveys); err != nil {
			t.Fatal(err)
		}
		if len(surveys.Items) != 3 || surveys.Items[1].SurveyID != "SV_1" || surveys.Items[1].DistributionID != "EMD_1R" {
			t.Fatalf("surveys %+v", surveys.Items)
		}
		if surveys.Items[0].RespondLink != nil {
			t.Errorf("javascript: respond link in API: %q", *surveys.Items[0].RespondLink)
		}
		if surveys.Items[1].RespondLink == nil || !strings.HasPrefix(*surveys.Items[1].RespondLink, "https://") {
			t.Errorf("respond link %v", surveys.Items[1].RespondLink)
		}
	}
	rec := get(t, api, "alice@example.com", "/notifications")
	var feed struct {
		Items []meNotification `json:"items"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &feed); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v", rec.Code, err)
	}
	if len(feed.Items) != 2 || feed.Items[0].Kind != "new_survey" || feed.Items[0].Read || !feed.Items[1].Read {
		t.Errorf("notifications %+v", feed.Items)
	}
	if rec := get(t, api, "", "/surveys"); rec.Code != 401 {
		t.Errorf("anonymous: %d", rec.Code)
	}
	if rec := get(t, api, "nobody@example.com", "/surveys"); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"items":[]}` {
		t.Errorf("empty list: %d %s", rec.Code, rec.Body)
	}
}

func TestMarkReadIsAPostProtectedFromOtherSites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	post := func(user, id string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/notifications/read", strings.NewReader(url.Values{"id": {id}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Email", user)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var id int64
	if err := f.store.Pool().QueryRow(context.Background(), `SELECT id FROM notifications WHERE dedupe_key = 'n1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	ids := strconvI(id)
	if rec := post("alice@example.com", ids, "Sec-Fetch-Site", "cross-site"); rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", rec.Code)
	}
	if rec := post("bob@example.com", ids, "Sec-Fetch-Site", "same-origin"); rec.Code != http.StatusSeeOther {
		t.Fatalf("other user's POST: %d", rec.Code)
	}
	if n := unread(t, f); n != 1 {
		t.Fatalf("another user marked alice's notification read (unread %d)", n)
	}
	if rec := post("alice@example.com", ids, "Sec-Fetch-Site", "same-origin"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/notifications" {
		t.Fatalf("same-origin POST: %d %v", rec.Code, rec.Header())
	}
	if n := unread(t, f); n != 0 {
		t.Fatalf("still %d unread", n)
	}
	doc := parse(t, get(t, h, "alice@example.com", "/notifications"))
	if doc.Find(`[data-testid="unread-badge"]`).Length() != 0 {
		t.Error("badge still shown")
	}
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func unread(t *testing.T, f *fixture) int {
	t.Helper()
	var n int
	if err := f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM notifications WHERE email = 'alice@example.com' AND read_at IS NULL AND expires_at > $1`, testNow).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLanguageSwitchIsRemembered(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{Store: nopStore{}, AuthMode: AuthHeader, TrustedProxies: []netip.Prefix{testProxy}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/lang", strings.NewReader("lang=fr&next=%2Fnotifications"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/notifications" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != langCookie || c[0].Value != "fr" {
		t.Fatalf("cookies %v", c)
	}
	doc := parse(t, get(t, srv.Handler(), "alice@example.com", "/", "Cookie", "microapps_lang=fr", "Accept-Language", "en"))
	if l, _ := doc.Find("html").Attr("lang"); l != "fr" {
		t.Errorf("lang %q after switching", l)
	}
	// An open redirect is not possible through next.
	req = httptest.NewRequest("POST", "/lang", strings.NewReader("lang=en&next=%2F%2Fevil.example"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Header().Get("Location") != "/" {
		t.Errorf("redirect to %q", rec.Header().Get("Location"))
	}
}

func TestDevModeNeedsPermissionAndSignsIn(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Store: nopStore{}, AuthMode: AuthDev, DevUsers: []string{"a@example.com"}}); err == nil {
		t.Fatal("dev mode started without AllowDevAuth")
	}
	srv, err := New(Options{Store: nopStore{}, AuthMode: AuthDev, AllowDevAuth: true, DevUsers: []string{"Alice@Example.com", "bob@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	rec := get(t, h, "", "/")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/signin") {
		t.Fatalf("anonymous: %d %v", rec.Code, rec.Header())
	}
	doc := parse(t, get(t, h, "", "/signin"))
	if n := doc.Find(`[data-testid="dev-user"]`).Length(); n != 2 {
		t.Fatalf("%d demo users", n)
	}
	signin := func(email string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/signin/dev", strings.NewReader(url.Values{"email": {email}, "next": {"/notifications"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := signin("mallory@example.com"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown demo user: %d", rec.Code)
	}
	rec = signin("alice@example.com")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/notifications" {
		t.Fatalf("sign in: %d %v", rec.Code, rec.Header())
	}
	var session *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "microapps_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v", session)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(session)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "alice@example.com") {
		t.Fatalf("signed in page: %d", rec.Code)
	}
}
