package web

import (
	"github.com/PuerkitoBio/goquery"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()

	t.Run("my active surveys lists one row per survey, soonest first, and hides finished, expired, inactive and test surveys", func(t *testing.T) {
		t.Parallel()
		rec := get(t, h, "  Alice@Example.COM ", "/")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		doc := parse(t, rec)
		rows := doc.Find(`[data-testid="survey-row"]`)
		got := attrs(rows, "data-survey-id")
		want := []string{"SV_2", "SV_1", "SV_B1"} // SV_2 expires in 5 hours, SV_1 in 2 days (the reminder), SV_B1 never
		if !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
		first := doc.Find(`[data-survey-id="SV_1"]`)
		if href, _ := first.Find("a").Attr("href"); href != "/surveys/"+intA+"/EMD_1R" {
			t.Errorf("SV_1 links to %q, want the reminder that expires last", href)
		}
		if tm, _ := first.Find("time").Attr("datetime"); tm != "2026-03-12T12:00:00Z" {
			t.Errorf("SV_1 ends %q", tm)
		}
		if rel := first.Find(".rel").Text(); rel != "in 2 days" {
			t.Errorf("relative end %q", rel)
		}
		if tag := first.Find(".tag").Text(); tag != "Not started" {
			t.Errorf("status %q", tag)
		}
		if g := strings.TrimSpace(first.Find(".group").Text()); g != "Sales" {
			t.Errorf("group %q", g)
		}
		if rel := rows.First().Find(".rel").Text(); rel != "in 5 hours" {
			t.Errorf("SV_2 relative end %q", rel)
		}
		if tag := rows.First().Find(".tag").Text(); tag != "In progress" {
			t.Errorf("SV_2 status %q", tag)
		}
		if title := doc.Find("title").Text(); title != "My active surveys – microapps" {
			t.Errorf("title %q", title)
		}
		if lang, _ := doc.Find("html").Attr("lang"); lang != "en" {
			t.Errorf("lang %q", lang)
		}
		if doc.Find(`a.skip-link[href="#main"]`).Length() != 1 || doc.Find("main#main").Length() != 1 {
			t.Error("skip link or main landmark missing")
		}
		if b := strings.TrimSpace(doc.Find(`[data-testid="unread-badge"] [aria-hidden]`).Text()); b != "1" {
			t.Errorf("unread badge %q, want 1", b)
		}
		if doc.Find(`a[href="/admin/surveys"]`).Length() != 0 {
			t.Error("a user who administers nothing sees the Open surveys link")
		}
		stale := texts(doc.Find(`[data-testid="stale-notice"]`))
		if len(stale) != 1 || !strings.Contains(stale[0], "Customer Success: data as of 10 Mar 2026, 07:00 UTC — Qualtrics could not be reached since.") {
			t.Errorf("stale notices %q", stale)
		}
	})

	t.Run("hostile survey names are escaped", func(t *testing.T) {
		t.Parallel()
		rec := get(t, h, "alice@example.com", "/")
		if strings.Contains(rec.Body.String(), "<script>alert(1)</script>") {
			t.Fatal("survey name rendered as markup")
		}
		doc := parse(t, rec)
		if doc.Find("script:not([src])").Length() != 0 {
			t.Fatal("inline script in page")
		}
		if name := doc.Find(`[data-survey-id="SV_2"] a`).Text(); name != "<script>alert(1)</script>" {
			t.Errorf("escaped name reads %q", name)
		}
	})

	t.Run("the empty state is friendly", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "nobody@example.com", "/"))
		if got := strings.TrimSpace(doc.Find(`[data-testid="empty-state"] .lead`).Text()); got != "You have no surveys waiting for you." {
			t.Errorf("empty state %q", got)
		}
		if doc.Find("table").Length() != 0 {
			t.Error("empty table rendered")
		}
	})

	t.Run("French from Accept-Language", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "alice@example.com", "/", "Accept-Language", "fr-CA,fr;q=0.9,en;q=0.5"))
		if lang, _ := doc.Find("html").Attr("lang"); lang != "fr" {
			t.Errorf("lang %q", lang)
		}
		if h1 := doc.Find("h1").Text(); h1 != "Mes enquêtes actives" {
			t.Errorf("h1 %q", h1)
		}
		if rel := doc.Find(`[data-survey-id="SV_1"] .rel`).Text(); rel != "dans 2 jours" {
			t.Errorf("relative %q", rel)
		}
	})

	t.Run("times follow the tz cookie", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "alice@example.com", "/", "Cookie", "microapps_tz=Europe%2FParis"))
		if abs := doc.Find(`[data-survey-id="SV_1"] time`).Text(); abs != "12 Mar 2026, 13:00 CET" {
			t.Errorf("absolute %q", abs)
		}
	})

	t.Run("survey details show the respond button with the personal link", func(t *testing.T) {
		t.Parallel()
		rec := get(t, h, "alice@example.com", "/surveys/"+intA+"/EMD_1R")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		doc := parse(t, rec)
		btn := doc.Find(`[data-testid="respond-link"]`)
		if href, _ := btn.Attr("href"); href != "https://iad1.qualtrics.com/jfe/form/SV_1?Q_DL=EMD_1R_a" {
			t.Errorf("respond href %q", href)
		}
		if !strings.Contains(btn.Text(), "Respond to survey in Qualtrics") || !strings.Contains(btn.Text(), "(opens Qualtrics)") {
			t.Errorf("button text %q", btn.Text())
		}
		var parts []string
		doc.Find("dl.summary > div").Each(func(_ int, d *goquery.Selection) {
			parts = append(parts, d.Find("dt").Text()+" "+strings.Join(strings.Fields(d.Find("dd").Text()), " "))
		})
		dl := strings.Join(parts, " | ")
		for _, want := range []string{"Status Not started", "Expires in 2 days", "Sent 9 Mar 2026, 12:00 UTC", "Sender Survey Team <surveys@example.com>", "Functional group Sales"} {
			if !strings.Contains(dl, want) {
				t.Errorf("details %q lack %q", dl, want)
			}
		}
		if doc.Find("title").Text() != "Quarterly pulse – microapps" {
			t.Errorf("title %q", doc.Find("title").Text())
		}
	})

	t.Run("a javascript respond link is not linked", func(t *testing.T) {
		t.Parallel()
		rec := get(t, h, "alice@example.com", "/surveys/"+intA+"/EMD_2")
		if strings.Contains(rec.Body.String(), "javascript:") {
			t.Fatal("javascript: URL in page")
		}
		doc := parse(t, rec)
		if doc.Find(`[data-testid="respond-link"]`).Length() != 0 {
			t.Error("respond button shown for an unsafe link")
		}
		if h1 := doc.Find("h1").Text(); h1 != "<script>alert(1)</script>" {
			t.Errorf("h1 %q", h1)
		}
	})

	t.Run("the respond button is hidden once the survey is finished", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/surveys/" + intA + "/EMD_4R", "/surveys/" + intA + "/EMD_4"} {
			doc := parse(t, get(t, h, "alice@example.com", p))
			if doc.Find(`[data-testid="respond-link"]`).Length() != 0 {
				t.Errorf("%s: respond button shown after finishing", p)
			}
			if !strings.Contains(doc.Find(".notice-success").Text(), "completed this survey") {
				t.Errorf("%s: no thank-you notice", p)
			}
		}
	})

	t.Run("open surveys list the admin's active unexpired surveys", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "admin@example.com", "/admin/surveys"))
		got := attrs(doc.Find(`[data-testid="survey-row"]`), "data-survey-id")
		want := []string{"SV_2", "SV_4", "SV_5", "SV_1", "SV_B1"} // same end date: by name; no end date last
		if !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
		row := doc.Find(`[data-survey-id="SV_1"]`)
		if r := row.Find("td.num").Text(); r != "12" {
			t.Errorf("responses %q", r)
		}
		if c := row.Find(".completion-label").Text(); c != "35 of 150 finished (23%)" {
			t.Errorf("completion %q", c)
		}
		if doc.Find(`a[href="/admin/surveys"][aria-current="page"]`).Length() != 1 {
			t.Error("nav does not mark Open surveys current")
		}
	})

	t.Run("open surveys search by name", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "admin@example.com", "/admin/surveys?q=PULSE"))
		if got := attrs(doc.Find(`[data-testid="survey-row"]`), "data-survey-id"); !slices.Equal(got, []string{"SV_1"}) {
			t.Errorf("rows %v", got)
		}
		doc = parse(t, get(t, h, "admin@example.com", "/admin/surveys?q=%25"))
		if got := doc.Find(`[data-testid="survey-row"]`).Length(); got != 0 {
			t.Errorf("%% matched %d rows: LIKE wildcards must be literal", got)
		}
		if e := doc.Find(`[data-testid="empty-state"]`).Text(); !strings.Contains(e, "No open survey matches") {
			t.Errorf("empty state %q", e)
		}
	})

	t.Run("survey results show distributions newest first and the recipients of the selected one", func(t *testing.T) {
		t.Parallel()
		base := "/admin/surveys/" + intA + "/SV_1"
		doc := parse(t, get(t, h, "admin@example.com", base))
		if got := attrs(doc.Find(`[data-testid="distribution"]`), "data-distribution-id"); !slices.Equal(got, []string{"EMD_1R", "EMD_1"}) {
			t.Errorf("distributions %v (TestEmail must be left out)", got)
		}
		if href, _ := doc.Find(`[data-testid="results-link"]`).Attr("href"); href != "https://iad1.qualtrics.com/responses/#/surveys/SV_1" {
			t.Errorf("results deep link %q", href)
		}
		doc = parse(t, get(t, h, "admin@example.com", base+"?distribution=EMD_1"))
		var rows []string
		doc.Find(`[data-testid="recipient-row"]`).Each(func(_ int, r *goquery.Selection) {
			rows = append(rows, r.Find("th").Text()+" "+r.Find(".tag").Text()+" "+r.Find("time").AttrOr("datetime", ""))
		})
		if !slices.Equal(rows, []string{"alice@example.com Opened 2026-03-08T12:00:00Z", "bob@example.com Finished 2026-03-08T12:00:00Z"}) {
			t.Errorf("recipients %q", rows)
		}
		if href, _ := doc.Find(`.dist-selected [data-testid="distribution-data-link"]`).Attr("href"); href != "/admin/distributions/"+intA+"/EMD_1" {
			t.Errorf("distribution data link %q", href)
		}
		doc = parse(t, get(t, h, "admin@example.com", base+"?distribution=EMD_1&status=finished"))
		if rows := texts(doc.Find(`[data-testid="recipient-row"]`)); len(rows) != 1 || !strings.HasPrefix(rows[0], "bob@example.com") {
			t.Errorf("filtered recipients %q", rows)
		}
		if rec := get(t, h, "admin@example.com", base+"?distribution=EMD_C1"); rec.Code != http.StatusNotFound {
			t.Errorf("another survey's distribution: %d", rec.Code)
		}
	})

	t.Run("a custom results template and the brand host are used", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "admin@example.com", "/admin/surveys/"+intB+"/SV_B1"))
		if href, _ := doc.Find(`[data-testid="results-link"]`).Attr("href"); href != "https://acme.eu.qualtrics.com/custom/SV_B1" {
			t.Errorf("results deep link %q", href)
		}
	})

	t.Run("distribution data shows the nine figures, the rate, a chart and the review link", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "admin@example.com", "/admin/distributions/"+intA+"/EMD_1"))
		want := map[string]string{"sent": "100", "opened": "60", "started": "40", "finished": "30", "bounced": "2",
			"failed": "1", "skipped": "3", "blocked": "4", "complaints": "5"}
		for k, v := range want {
			if got := doc.Find(`[data-testid="stat-` + k + `"]`).Text(); got != v {
				t.Errorf("stat-%s = %q, want %q", k, got, v)
			}
		}
		if r := doc.Find(`[data-testid="response-rate"]`).Text(); r != "30%" {
			t.Errorf("rate %q", r)
		}
		if href, _ := doc.Find(`[data-testid="review-distributions-link"]`).Attr("href"); href != "https://iad1.qualtrics.com/Q/MyProjectsSection" {
			t.Errorf("review link %q", href)
		}
		if n := doc.Find(`[data-testid="stats-chart"] polyline`).Length(); n != 3 {
			t.Errorf("%d chart lines", n)
		}
		if n := doc.Find("time[datetime]").Length(); n < 4 {
			t.Errorf("only %d <time> elements", n)
		}
	})

	t.Run("notifications are newest first, unexpired, rendered from their data", func(t *testing.T) {
		t.Parallel()
		rec := get(t, h, "alice@example.com", "/notifications")
		body := rec.Body.String()
		if strings.Contains(body, "<img src=x") || strings.Contains(body, "javascript:") {
			t.Fatal("hostile notification data rendered unsafely")
		}
		doc := parse(t, rec)
		items := doc.Find(`[data-testid="notification"]`)
		if got := attrs(items, "data-kind"); !slices.Equal(got, []string{"new_survey", "survey_expiring"}) {
			t.Fatalf("kinds %v", got)
		}
		first := items.First()
		if u, _ := first.Attr("data-unread"); u != "true" {
			t.Error("first item not unread")
		}
		if p := strings.Join(strings.Fields(first.Find("p").First().Text()), " "); p != "You have received a new survey request: Quarterly pulse, due on 12 Mar 2026, 12:00 UTC." {
			t.Errorf("body %q", p)
		}
		if href, _ := first.Find(`a[href^="/surveys/"]`).Attr("href"); href != "/surveys/"+intA+"/EMD_1R" {
			t.Errorf("details link %q", href)
		}
		if first.Find(`form[action="/notifications/read"] input[name="id"]`).Length() != 1 {
			t.Error("no mark-as-read form")
		}
		if items.Eq(1).Find(`form[action="/notifications/read"]`).Length() != 0 {
			t.Error("read item offers mark as read")
		}
		if items.Eq(1).Find("a.button").Length() != 0 {
			t.Error("javascript respond link became a button")
		}
	})

	t.Run("statistics notifications link to distribution data and Qualtrics", func(t *testing.T) {
		t.Parallel()
		doc := parse(t, get(t, h, "admin@example.com", "/notifications", "Accept-Language", "fr"))
		item := doc.Find(`[data-testid="notification"][data-kind="survey_statistics"]`)
		if p := strings.Join(strings.Fields(item.Find("p").First().Text()), " "); p != "Quarterly pulse envoyée le 8 mars 2026, 12:00 UTC : 30 sur 100 terminées (taux de réponse 30,0 %). Le lien expire le 10 mars 2026, 17:00 UTC." {
			t.Errorf("body %q", p)
		}
		// The words and their French spacing are the emails' (internal/words).
		if p := item.Find("p").First().Text(); !strings.Contains(p, "UTC\u00a0: 30") || !strings.Contains(p, "30,0\u202f%") {
			t.Errorf("body %q", p)
		}
		if href, _ := item.Find("a.button").Attr("href"); href != "https://iad1.qualtrics.com/Q/MyProjectsSection" {
			t.Errorf("review link %q", href)
		}
		if href, _ := item.Find(`a[href^="/admin/"]`).Attr("href"); href != "/admin/distributions/"+intA+"/EMD_1" {
			t.Errorf("data link %q", href)
		}
	})
}

func TestEveryPageHasSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.headerServer(t).Handler()
	for _, p := range []string{"/", "/notifications", "/admin/surveys", "/nope", "/surveys/" + intA + "/EMD_1R"} {
		rec := get(t, h, "alice@example.com", p)
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code", p)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", p, rec.Header())
		}
		if strings.Contains(rec.Body.String(), " style=") {
			t.Errorf("%s: inline style attribute would be blocked by the CSP", p)
		}
	}
}

func TestStaticAssetsAreHashedAndCachedForever(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{Store: nopStore{}, AuthMode: AuthHeader, TrustedProxies: []netip.Prefix{testProxy}})
	if err != nil {
		t.Fatal(err)
	}
	css := srv.static.url("app.css")
	if !regexp.MustCompile(`^/static/app\.[0-9a-f]{8}\.css$`).MatchString(css) {
		t.Fatalf("css path %q", css)
	}
	rec := get(t, srv.Handler(), "", css)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("css: %d %v", rec.Code, rec.Header())
	}
	if rec := get(t, srv.Handler(), "", "/static/app.00000000.css"); rec.Code != 404 {
		t.Errorf("stale hash: %d", rec.Code)
	}
}
