package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
)

func post(t testing.TB, h http.Handler, user, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.Header.Set("X-Forwarded-Email", user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPagesRememberTheUsersLanguageAndZone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	ctx := context.Background()
	if rec := get(t, h, "alice@example.com", "/", "Accept-Language", "fr-CA,fr;q=0.9,en;q=0.5",
		"Cookie", "microapps_tz=Europe%2FParis"); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	u, err := f.store.GetUserSettings(ctx, "alice@example.com")
	if err != nil || u.Language != "fr" || u.TimeZone != "Europe/Paris" {
		t.Fatalf("settings %+v, %v; want fr and Europe/Paris", u, err)
	}
	// The language the user chooses later wins; no zone cookie keeps the zone.
	get(t, h, "alice@example.com", "/notifications", "Cookie", "microapps_lang=en")
	if u, _ = f.store.GetUserSettings(ctx, "alice@example.com"); u.Language != "en" || u.TimeZone != "Europe/Paris" {
		t.Fatalf("settings %+v after choosing English", u)
	}
}

func TestEmailSettingsPageTurnsEmailOffAndOn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	ctx := context.Background()
	if href, _ := parse(t, get(t, h, "bob@example.com", "/notifications")).Find(`[data-testid="email-settings-link"]`).Attr("href"); href != "/settings/notifications" {
		t.Fatalf("the feed links to %q for email settings", href)
	}
	doc := parse(t, get(t, h, "bob@example.com", "/settings/notifications"))
	if on, _ := doc.Find(`[data-testid="email-on"]`).Attr("checked"); doc.Find(`[data-testid="email-on"][checked]`).Length() != 1 {
		t.Fatalf("email is not shown on by default (%q)", on)
	}
	rec := post(t, h, "bob@example.com", "/settings/notifications", url.Values{"email": {"off"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/settings/notifications?saved=1" {
		t.Fatalf("POST: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if u, _ := f.store.GetUserSettings(ctx, "bob@example.com"); !u.EmailOff {
		t.Fatal("email is not off after saving off")
	}
	if u, _ := f.store.GetUserSettings(ctx, "alice@example.com"); u.EmailOff {
		t.Fatal("another user's email was turned off")
	}
	doc = parse(t, get(t, h, "bob@example.com", "/settings/notifications?saved=1"))
	if doc.Find(`[data-testid="email-off"][checked]`).Length() != 1 || doc.Find(`[data-testid="settings-saved"]`).Length() != 1 {
		t.Fatal("the page does not show email off and saved")
	}
	post(t, h, "bob@example.com", "/settings/notifications", url.Values{"email": {"on"}})
	if u, _ := f.store.GetUserSettings(ctx, "bob@example.com"); u.EmailOff {
		t.Fatal("email is still off after saving on")
	}
	if rec := post(t, h, "bob@example.com", "/settings/notifications", url.Values{"email": {"maybe"}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("a bad value got %d", rec.Code)
	}
	if rec := get(t, h, "", "/settings/notifications"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("signed out: %d", rec.Code)
	}
	// A cross-site form cannot turn someone's email off.
	if rec := post(t, h, "bob@example.com", "/settings/notifications", url.Values{"email": {"off"}},
		"Sec-Fetch-Site", "cross-site"); rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST got %d", rec.Code)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	ctx := context.Background()
	token, err := f.store.UnsubscribeToken(ctx, "alice@example.com", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := f.store.UnsubscribeToken(ctx, "alice@example.com", testNow); again == token || len(token) < 40 {
		t.Fatalf("token %q then %q: each email gets its own", token, again)
	}
	// GET (a person or a link scanner) changes nothing.
	rec := get(t, h, "", "/unsubscribe/"+token)
	if rec.Code != http.StatusOK || parse(t, rec).Find(`[data-testid="unsubscribe-button"]`).Length() != 1 {
		t.Fatalf("GET: %d", rec.Code)
	}
	if u, _ := f.store.GetUserSettings(ctx, "alice@example.com"); u.EmailOff {
		t.Fatal("a GET turned email off")
	}
	// The mail provider's one-click POST: no session, no origin headers.
	rec = post(t, h, "", "/unsubscribe/"+token, url.Values{"List-Unsubscribe": {"One-Click"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "alice@example.com") {
		t.Fatalf("POST: %d", rec.Code)
	}
	if u, _ := f.store.GetUserSettings(ctx, "alice@example.com"); !u.EmailOff {
		t.Fatal("one-click POST did not turn email off")
	}
	// Providers may send the one-click body as multipart/form-data (RFC 8058).
	bob, _ := f.store.UnsubscribeToken(ctx, "bob@example.com", testNow)
	body := "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n"
	req := httptest.NewRequest(http.MethodPost, "/unsubscribe/"+bob, strings.NewReader(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if u, _ := f.store.GetUserSettings(ctx, "bob@example.com"); rec.Code != http.StatusOK || !u.EmailOff {
		t.Fatalf("multipart one-click POST: %d, email off %v", rec.Code, u.EmailOff)
	}
	if rec := post(t, h, "", "/unsubscribe/not-a-token", url.Values{"List-Unsubscribe": {"One-Click"}}); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown token: %d", rec.Code)
	}
}

// Issue 31, item 4: unsubscribe tokens were stored in clear, one per user,
// for ever, and turning email back on left a forwarded link working. Only
// the SHA-256 of a token is stored now, each email has its own, a token
// expires after UnsubscribeTokenLifetime, and turning email back on ends
// every token of the user. The path is redacted wherever it is logged.
func TestUnsubscribeTokensAreHashedExpireAndRotate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	ctx := context.Background()
	const who = "alice@example.com"
	oneClick := func(token string) int {
		return post(t, h, "", "/unsubscribe/"+token, url.Values{"List-Unsubscribe": {"One-Click"}}).Code
	}
	emailOff := func() bool {
		u, err := f.store.GetUserSettings(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		return u.EmailOff
	}
	forwarded, _ := f.store.UnsubscribeToken(ctx, who, testNow)
	latest, _ := f.store.UnsubscribeToken(ctx, who, testNow)

	var dump string
	if err := f.store.Pool().QueryRow(ctx, `SELECT coalesce(string_agg(t::text, ' '), '') FROM (
		SELECT u::text FROM user_settings u UNION ALL SELECT x::text FROM unsubscribe_tokens x) t`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, forwarded) || strings.Contains(dump, latest) {
		t.Error("a token is stored in clear")
	}

	if code := oneClick(forwarded); code != http.StatusOK || !emailOff() {
		t.Fatalf("one-click with the forwarded link: %d, email off %v", code, emailOff())
	}
	// Turning email back on (the settings page) ends every earlier link.
	if rec := post(t, h, who, "/settings/notifications", url.Values{"email": {"on"}}); rec.Code != http.StatusSeeOther || emailOff() {
		t.Fatalf("turning email back on: %d, email off %v", rec.Code, emailOff())
	}
	for _, token := range []string{forwarded, latest} {
		if code := oneClick(token); code != http.StatusNotFound || emailOff() {
			t.Errorf("a link from before the re-subscription: %d, email off %v; want 404 and email on", code, emailOff())
		}
		if rec := get(t, h, "", "/unsubscribe/"+token); rec.Code != http.StatusNotFound {
			t.Errorf("GET a link from before the re-subscription: %d", rec.Code)
		}
	}
	// Saving the settings with email already on keeps the links of emails sent since.
	fresh, _ := f.store.UnsubscribeToken(ctx, who, testNow)
	post(t, h, who, "/settings/notifications", url.Values{"email": {"on"}})
	if rec := get(t, h, "", "/unsubscribe/"+fresh); rec.Code != http.StatusOK {
		t.Errorf("a link after saving unchanged settings: %d", rec.Code)
	}

	// A link older than the lifetime no longer works; one just younger does.
	old, _ := f.store.UnsubscribeToken(ctx, "bob@example.com", testNow.Add(-store.UnsubscribeTokenLifetime))
	young, _ := f.store.UnsubscribeToken(ctx, "bob@example.com", testNow.Add(-store.UnsubscribeTokenLifetime+time.Minute))
	if code := oneClick(old); code != http.StatusNotFound {
		t.Errorf("an expired link: %d, want 404", code)
	}
	if code := oneClick(young); code != http.StatusOK {
		t.Errorf("a link one minute from expiry: %d, want 200", code)
	}

	if got := LogPath("/unsubscribe/" + fresh); strings.Contains(got, fresh) {
		t.Errorf("LogPath keeps the token: %s", got)
	}
	if got := LogPath("/surveys/a/b"); got != "/surveys/a/b" {
		t.Errorf("LogPath changed another path: %s", got)
	}
}
