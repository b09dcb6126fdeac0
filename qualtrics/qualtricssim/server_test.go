package qualtricssim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func firstOf(t *testing.T, f *fixture, typ string) Distribution {
	t.Helper()
	for _, sv := range f.sim.Surveys(f.brand.ID) {
		for _, d := range f.sim.Distributions(sv.ID) {
			if d.RequestType == typ && d.Stats.Sent > 0 {
				return d
			}
		}
	}
	t.Fatalf("no %s distribution generated", typ)
	return Distribution{}
}

func TestResponsesHaveTheShapesOfRecordedOnes(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	f := newFixture(t, Spec{Surveys: 4, Recipients: 300})
	sv := f.sim.Surveys(f.brand.ID)[0]
	inv := firstOf(t, f, RequestInvite)
	tests := []struct {
		name    string
		fixture string
		path    string
		status  int
		paths   []string
	}{
		{"the survey list looks like the recorded survey list", "surveys-list.json", "surveys", 200, []string{"", "meta", "result", "result.elements[]"}},
		{"a survey looks like the recorded survey", "survey-get.json", "surveys/" + sv.ID, 200, []string{"", "meta", "result"}},
		{"a survey definition looks like the recorded one", "survey-definition.json", "survey-definitions/" + sv.ID, 200, []string{"", "meta", "result"}},
		{"a distribution list looks like the recorded one", "distributions-empty.json", "distributions?surveyId=" + sv.ID, 200, []string{"", "meta", "result"}},
		{"history looks like the recorded history", "distribution-history.json", "distributions/" + inv.ID + "/history", 200, []string{"", "meta", "result", "result.elements[]"}},
		{"links look like the recorded links", "distribution-links.json", "distributions/" + inv.ID + "/links?surveyId=" + inv.SurveyID, 200, []string{"", "meta", "result", "result.elements[]"}},
		{"a missing distribution looks like the recorded 404", "eventsubscription-not-found.json", "distributions/EMD_000000000000000/history", 404, []string{"", "meta", "meta.error"}},
		{"an event subscription create looks like the recorded one", "eventsubscription-create.json", "", 200, []string{"", "meta", "result"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, err := os.ReadFile(filepath.Join(dir, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			var r response
			if tc.path == "" {
				r = createSubscription(t, f, f.adminToken(), "http://127.0.0.1:1/hook", "controlpanel.activateSurvey", "k")
			} else {
				r = f.get(t, tc.path, f.adminToken())
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			got, exp := shape(t, r.body), shape(t, want)
			for _, p := range tc.paths {
				if keyString(got[p]) != keyString(exp[p]) {
					t.Errorf("keys of %q:\n got %v\nwant %v", p, got[p], exp[p])
				}
			}
		})
	}
}

func TestPaginationVisitsEveryItemExactlyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 230, Recipients: 460})
	big, err := f.sim.AddSurvey(f.brand.ID, Survey{Name: "Many sends", IsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	var wantDists []string
	for i := range 240 {
		d, err := f.sim.AddDistribution(Distribution{SurveyID: big.ID, SendDate: testNow.Add(-time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		wantDists = append(wantDists, d.ID)
	}
	rs := make([]Recipient, 1000)
	for i := range rs {
		rs[i].Email = "person" + string(rune('a'+i%26)) + "@example.com"
	}
	crowd, err := f.sim.AddDistribution(Distribution{SurveyID: big.ID, Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	wantDists = append(wantDists, crowd.ID)
	var wantSurveys, wantContacts []string
	for _, sv := range f.sim.Surveys(f.brand.ID) {
		wantSurveys = append(wantSurveys, sv.ID)
	}
	for _, rc := range f.sim.Recipients(crowd.ID) {
		wantContacts = append(wantContacts, rc.ContactID)
	}
	base := f.http.URL + "/API/v3/"
	tests := []struct {
		name  string
		first string
		key   string
		want  []string
	}{
		{"surveys are paged by offset", base + "surveys", "id", wantSurveys},
		{"distributions are paged by skipToken", base + "distributions?surveyId=" + big.ID, "id", wantDists},
		{"history is paged by skipToken", base + "distributions/" + crowd.ID + "/history", "contactId", wantContacts},
		{"links are paged by skipToken", base + "distributions/" + crowd.ID + "/links?surveyId=" + big.ID, "contactId", wantContacts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			els, sizes := walk(t, tc.first, f.adminToken())
			seen := map[string]bool{}
			for _, e := range els {
				id, _ := e[tc.key].(string)
				if seen[id] {
					t.Fatalf("%s seen twice", id)
				}
				seen[id] = true
			}
			if len(els) != len(tc.want) {
				t.Fatalf("visited %d items, want %d", len(els), len(tc.want))
			}
			for _, id := range tc.want {
				if !seen[id] {
					t.Fatalf("%s never visited", id)
				}
			}
			distinct := map[int]bool{}
			for i, n := range sizes {
				if n > 100 || (n < 60 && i < len(sizes)-1) {
					t.Errorf("page %d has %d items; pages hold 60 to 100", i, n)
				}
				distinct[n] = true
			}
			if len(sizes) < 3 || len(distinct) < 2 {
				t.Errorf("page sizes %v: want at least three uneven pages", sizes)
			}
		})
	}
	t.Run("nextPage is absolute on the request's host", func(t *testing.T) {
		t.Parallel()
		_, next := f.get(t, "distributions/"+crowd.ID+"/links?surveyId="+big.ID, f.adminToken()).page(t)
		if next == nil || !strings.HasPrefix(*next, f.http.URL+"/API/v3/distributions/"+crowd.ID+"/links?") {
			t.Fatalf("nextPage %v", next)
		}
		u, _ := url.Parse(*next)
		if u.Query().Get("surveyId") != big.ID || u.Query().Get("skipToken") == "" {
			t.Errorf("nextPage %s lost surveyId or skipToken", *next)
		}
	})
}

func TestDistributionFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 1, Recipients: 10})
	sv, _ := f.sim.AddSurvey(f.brand.ID, Survey{Name: "Filters"})
	mk := func(typ string, at time.Time) string {
		d, err := f.sim.AddDistribution(Distribution{SurveyID: sv.ID, RequestType: typ, SendDate: at})
		if err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	old := mk(RequestInvite, testNow.Add(-72*time.Hour))
	rem := mk(RequestReminder, testNow.Add(-24*time.Hour))
	recent := mk(RequestInvite, testNow.Add(-time.Hour))
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"no filter lists every distribution", "", []string{old, rem, recent}},
		{"distributionRequestType keeps one type", "&distributionRequestType=Reminder", []string{rem}},
		{"sendStartDate drops older sends", "&sendStartDate=" + testNow.Add(-2*time.Hour).Format(time.RFC3339), []string{recent}},
		{"sendEndDate drops newer sends", "&sendEndDate=" + testNow.Add(-48*time.Hour).Format(time.RFC3339), []string{old}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			els, _ := walk(t, f.http.URL+"/API/v3/distributions?surveyId="+sv.ID+tc.query, f.adminToken())
			var got []string
			for _, e := range els {
				got = append(got, e["id"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 8, Recipients: 40})
	revoked := f.brand.Users[0].Tokens[0]
	tests := []struct {
		name   string
		header string
		token  string
		prep   func()
		status int
	}{
		{"a request without a token is refused", "X-API-TOKEN", "", nil, 401},
		{"an unknown token is refused", "X-API-TOKEN", "nope", nil, 401},
		{"a token in a lower-case header is accepted", "x-api-token", f.userToken(), nil, 200},
		{"a revoked token is refused", "X-API-TOKEN", revoked, func() { _ = f.sim.RevokeToken(revoked) }, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prep != nil {
				tc.prep()
			}
			h := http.Header{}
			if tc.token != "" {
				h[tc.header] = []string{tc.token}
			}
			r := do(t, http.MethodGet, f.http.URL+"/API/v3/whoami", h, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			if tc.status == 401 {
				if code := r.errorCode(t); code != "DCD_7" {
					t.Errorf("errorCode %q, want DCD_7", code)
				}
			}
		})
	}
	t.Run("a restored token is accepted again", func(t *testing.T) {
		if err := f.sim.RestoreToken(revoked); err != nil {
			t.Fatal(err)
		}
		if r := f.get(t, "whoami", revoked); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("whoami tells an admin token from a user token", func(t *testing.T) {
		for tok, want := range map[string]string{f.adminToken(): AccountBrandAdmin, f.userToken(): AccountUser} {
			res := f.get(t, "whoami", tok).envelope(t)["result"].(map[string]any)
			if res["accountType"] != want || res["brandId"] != f.brand.ID || res["datacenter"] != "iad1" {
				t.Errorf("whoami %v, want accountType %s", res, want)
			}
		}
	})
	t.Run("a user token lists only the surveys it owns", func(t *testing.T) {
		all, _ := walk(t, f.http.URL+"/API/v3/surveys", f.adminToken())
		mine, _ := walk(t, f.http.URL+"/API/v3/surveys", f.userToken())
		if len(mine) == 0 || len(mine) >= len(all) {
			t.Fatalf("user sees %d of %d surveys", len(mine), len(all))
		}
		for _, e := range mine {
			if e["ownerId"] != f.brand.Users[1].ID {
				t.Errorf("user sees %v", e)
			}
		}
	})
}

func TestErrorsCarryRealCodes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 12, Recipients: 200})
	test := firstOf(t, f, RequestTestEmail)
	inv := firstOf(t, f, RequestInvite)
	unlicensed := newFixture(t, Spec{Surveys: 2, Recipients: 20})
	if err := unlicensed.sim.SetDirectoryLicence(unlicensed.brand.ID, false); err != nil {
		t.Fatal(err)
	}
	uinv := firstOf(t, unlicensed, RequestInvite)
	tests := []struct {
		name   string
		f      *fixture
		path   string
		status int
		code   string
	}{
		{"history of a test email is refused", f, "distributions/" + test.ID + "/history", 400, "CP_TD_GER_NP"},
		{"an unknown distribution is not found", f, "distributions/EMD_xxxxxxxxxxxxxxx/history", 404, "GED_3"},
		{"a distribution of another survey is not found", f, "distributions/" + inv.ID + "?surveyId=SV_xxxxxxxxxxxxxxx", 404, "GED_3"},
		{"an unknown survey is not found", f, "surveys/SV_xxxxxxxxxxxxxxx", 404, "QMST_2.2"},
		{"distributions without surveyId are a bad request", f, "distributions", 400, "GD_1"},
		{"links without surveyId are a bad request", f, "distributions/" + inv.ID + "/links", 400, "GD_1"},
		{"an unknown skipToken is a bad request", f, "distributions/" + inv.ID + "/history?skipToken=MLRP_nope", 400, "GD_2"},
		{"history without a directory licence is not found", unlicensed, "distributions/" + uinv.ID + "/history", 404, "GED_4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.f.get(t, tc.path, tc.f.adminToken())
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if code := r.errorCode(t); code != tc.code {
				t.Errorf("errorCode %q, want %q", code, tc.code)
			}
			if hs := r.envelope(t)["meta"].(map[string]any)["httpStatus"]; !strings.HasPrefix(hs.(string), http.StatusText(tc.status)) && !strings.Contains(hs.(string), http.StatusText(tc.status)) {
				t.Errorf("httpStatus %q", hs)
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limits     Limits
		endpoint   func(f *fixture, d Distribution) string
		allowed    int
		retryAfter bool
	}{
		{"history over 3 a minute is refused with Retry-After", Limits{HistoryPerMinute: 3, RetryAfter: true},
			func(f *fixture, d Distribution) string { return "distributions/" + d.ID + "/history" }, 3, true},
		{"links over 2 a minute are refused without Retry-After", Limits{LinksPerMinute: 2},
			func(f *fixture, d Distribution) string {
				return "distributions/" + d.ID + "/links?surveyId=" + d.SurveyID
			}, 2, false},
		{"any call over the brand's 5 a minute is refused", Limits{BrandPerMinute: 5, HistoryPerMinute: 300, RetryAfter: true},
			func(f *fixture, d Distribution) string { return "whoami" }, 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Spec{Surveys: 2, Recipients: 20})
			f.clock.t = testNow.Add(20 * time.Second)
			f.sim.SetLimits(tc.limits)
			d := firstOf(t, f, RequestInvite)
			for i := range tc.allowed {
				if r := f.get(t, tc.endpoint(f, d), f.adminToken()); r.status != 200 {
					t.Fatalf("call %d: status %d", i+1, r.status)
				}
			}
			r := f.get(t, tc.endpoint(f, d), f.adminToken())
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429", r.status)
			}
			if got := r.header.Get("Retry-After"); (got != "") != tc.retryAfter {
				t.Errorf("Retry-After %q, want present=%v", got, tc.retryAfter)
			} else if tc.retryAfter && got != "40" {
				t.Errorf("Retry-After %q, want 40 (seconds to the next minute)", got)
			}
			f.clock.Add(time.Minute)
			if r := f.get(t, tc.endpoint(f, d), f.adminToken()); r.status != 200 {
				t.Errorf("next minute: status %d, want 200", r.status)
			}
		})
	}
	t.Run("disabled limits never refuse", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Spec{Surveys: 1, Recipients: 5})
		f.sim.SetLimits(Limits{Disabled: true, BrandPerMinute: 1})
		for range 5 {
			if r := f.get(t, "whoami", f.adminToken()); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
	})
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	const n = 600
	run := func(t *testing.T) (statuses []int, truncated, html int) {
		f := newFixture(t, Spec{Surveys: 1, Recipients: 5})
		f.sim.SetFaults(Faults{ErrorRate500: 0.1, ErrorRate504: 0.05, TruncateRate: 0.2})
		for range n {
			r := f.get(t, "whoami", f.adminToken())
			statuses = append(statuses, r.status)
			switch {
			case r.status == 200 && !json.Valid(r.body):
				truncated++
			case r.status == 504 && !json.Valid(r.body):
				html++
			}
		}
		if f.sim.Calls(EndpointWhoami) != n {
			t.Errorf("Calls(whoami) = %d, want %d", f.sim.Calls(EndpointWhoami), n)
		}
		return statuses, truncated, html
	}
	statuses, truncated, html := run(t)
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	near := func(name string, got int, rate float64) {
		want := rate * n
		if float64(got) < want*0.5 || float64(got) > want*1.5 {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, n, want)
		}
	}
	near("500s", count[500], 0.1)
	near("504s", count[504], 0.05)
	near("truncated 200s", truncated, 0.85*0.2)
	if html != count[504] {
		t.Errorf("%d of %d 504s were JSON; a gateway answers HTML", count[504]-html, count[504])
	}
	again, _, _ := run(t)
	for i := range statuses {
		if statuses[i] != again[i] {
			t.Fatalf("call %d: %d then %d; the same seed must fail the same calls", i, statuses[i], again[i])
		}
	}
}

func TestLatencyAndProxyNotice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 150, Recipients: 300})
	f.sim.SetFaults(Faults{Latency: 40 * time.Millisecond, ProxyNoticeHost: "sjc1.qualtrics.com"})
	start := time.Now()
	r := f.get(t, "surveys", f.adminToken())
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("answered in %v despite 40ms latency", time.Since(start))
	}
	meta := r.envelope(t)["meta"].(map[string]any)
	if meta["notice"] != "Request proxied. For faster response times, use this host instead: sjc1.qualtrics.com" {
		t.Errorf("notice %v", meta["notice"])
	}
	_, next := r.page(t)
	if next == nil || !strings.Contains(*next, "proxyDepth=1") || !strings.Contains(*next, "proxyInfo=") {
		t.Errorf("nextPage %v lacks proxy parameters", next)
	}
	if r := f.get(t, "surveys/SV_xxxxxxxxxxxxxxx", f.adminToken()); !strings.Contains(string(r.body), `"notice"`) {
		t.Errorf("error answers carry the notice too: %s", r.body)
	}
}

func TestCallCounters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 2, Recipients: 10})
	d := firstOf(t, f, RequestInvite)
	f.get(t, "whoami", f.adminToken())
	f.get(t, "whoami", "bad")
	f.get(t, "distributions/"+d.ID+"/history", f.adminToken())
	if f.sim.Calls(EndpointWhoami) != 2 || f.sim.Calls(EndpointHistory) != 1 || f.sim.TotalCalls() != 3 {
		t.Fatalf("whoami %d history %d total %d", f.sim.Calls(EndpointWhoami), f.sim.Calls(EndpointHistory), f.sim.TotalCalls())
	}
	f.sim.ResetCalls()
	if f.sim.TotalCalls() != 0 {
		t.Fatal("ResetCalls left counts")
	}
}

func TestPathsWithATrailingSlashAreServed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 2, Recipients: 10})
	sv := f.sim.Surveys(f.brand.ID)[0]
	for _, p := range []string{"surveys/", "surveys/" + sv.ID + "/", "whoami/"} {
		if r := f.get(t, p, f.adminToken()); r.status != 200 {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	if r := f.get(t, "no-such-thing", f.adminToken()); r.status != 404 || r.errorCode(t) == "" {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
}

func TestChangesWhileServingAreSafe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 2, Recipients: 10})
	d, rs := pendingDistribution(t, f, 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, rc := range rs {
			_, _ = f.sim.SetRecipientStatus(d.ID, rc.ContactID, AllStatuses[i%len(AllStatuses)], testNow)
			f.sim.SetFaults(Faults{})
			_ = f.sim.RevokeToken(f.userToken())
		}
	}()
	for range 10 {
		walk(t, f.http.URL+"/API/v3/distributions/"+d.ID+"/history", f.adminToken())
		f.get(t, "distributions?surveyId="+d.SurveyID, f.adminToken())
	}
	<-done
	got, _ := f.sim.Distribution(d.ID)
	if got.Stats != ComputeStats(f.sim.Recipients(d.ID)) {
		t.Errorf("stats %+v drifted from recipients", got.Stats)
	}
}
