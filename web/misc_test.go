package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/microapps/microapps/store"
)

type failingStore struct{ nopStore }

func (failingStore) MyActiveSurveysAndSummary(context.Context, string, time.Time) ([]store.MySurvey, store.UserSummary, error) {
	return nil, store.UserSummary{}, errors.New("connection refused to db-secret-host:5432")
}

func TestErrorsBecomeCleanPages(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	srv, err := New(Options{Store: failingStore{}, Log: zap.New(core), AuthMode: AuthHeader, TrustedProxies: []netip.Prefix{testProxy}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Forwarded-Email", "alice@example.com")
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-Id", "req-42") // as the app's request-id middleware does
	h.ServeHTTP(rec, req)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "db-secret-host") || !strings.Contains(rec.Body.String(), "req-42") {
		t.Errorf("store failure: %d %s", rec.Code, rec.Body)
	}
	if logs.FilterField(zap.String("requestId", "req-42")).Len() != 1 {
		t.Errorf("the cause was not logged with the request id: %v", logs.All())
	}

	// A component that fails half-way yields a 500 page, never half a page.
	broken := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		io.WriteString(w, "<p>half a page")
		return errors.New("boom")
	})
	rec = httptest.NewRecorder()
	srv.Render(rec, httptest.NewRequest("GET", "/", nil), broken)
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "half a page") {
		t.Errorf("broken component: %d %q", rec.Code, rec.Body)
	}
}

func TestLinksOnlyEverPointToHTTP(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://x.qualtrics.com/jfe/form/SV_1?Q_DL=a": "https://x.qualtrics.com/jfe/form/SV_1?Q_DL=a",
		"HTTP://x.example/a":                           "http://x.example/a",
		"javascript:alert(1)":                          "",
		"JaVaScRiPt:alert(1)":                          "",
		" javascript:alert(1)":                         "",
		"data:text/html,hi":                            "",
		"//evil.example/x":                             "",
		"/relative":                                    "",
		"https://user:pw@x.example/":                   "",
		"https://x.example/\nfoo":                      "",
	} {
		got, ok := safeHTTPURL(in)
		if got != want || ok != (want != "") {
			t.Errorf("safeHTTPURL(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	in := store.AdminIntegration{BaseURL: "https://iad1.qualtrics.com/API/v3/", DeepLinks: map[string]string{}}
	if got := deepLink(in, linkResults, map[string]string{"surveyId": "SV_1/../x?y#z"}); got != "https://iad1.qualtrics.com/responses/#/surveys/SV_1%2F..%2Fx%3Fy%23z" {
		t.Errorf("ids are not escaped: %q", got)
	}
	in.DeepLinks[linkReviewDistributions] = "javascript:alert('{host}')"
	if got := deepLink(in, linkReviewDistributions, nil); got != "" {
		t.Errorf("a javascript template became %q", got)
	}
	in.BrandBaseURL = "acme.qualtrics.com"
	if got := deepLink(in, linkResults, map[string]string{"surveyId": "SV_2"}); got != "https://acme.qualtrics.com/responses/#/surveys/SV_2" {
		t.Errorf("brand host: %q", got)
	}
	for _, next := range []string{"//evil.example", "https://evil.example", "/\\evil.example", "javascript:x"} {
		if localPath(next) != "/" {
			t.Errorf("localPath(%q) = %q", next, localPath(next))
		}
	}
}

func TestRelativeTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		d    time.Duration
		l    Lang
		want string
	}{
		{5*time.Hour + 20*time.Minute, LangEN, "in 5 hours"},
		{time.Hour, LangEN, "in 1 hour"},
		{30 * time.Second, LangEN, "now"},
		{45 * time.Minute, LangFR, "dans 45 minutes"},
		{-3 * 24 * time.Hour, LangEN, "3 days ago"},
		{-26 * time.Hour, LangFR, "il y a 26 heures"},
	}
	for _, c := range cases {
		if got := relTime(now.Add(c.d), now, c.l); got != c.want {
			t.Errorf("relTime(%v, %s) = %q, want %q", c.d, c.l, got, c.want)
		}
	}
}
