package qualtricssim

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	spec := Spec{Surveys: 6, Recipients: 400, Emails: []string{"alice@example.com"}, Now: testNow}
	tests := []struct {
		name  string
		a, b  int64
		equal bool
	}{
		{"the same seed gives the same brand", 7, 7, true},
		{"another seed gives another brand", 7, 8, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := reflect.DeepEqual(Generate(tc.a, spec), Generate(tc.b, spec)); got != tc.equal {
				t.Errorf("DeepEqual = %v, want %v", got, tc.equal)
			}
		})
	}
}

var (
	reSurvey  = regexp.MustCompile(`^SV_[A-Za-z0-9]{15}$`)
	reDist    = regexp.MustCompile(`^EMD_[A-Za-z0-9]{15}$`)
	reContact = regexp.MustCompile(`^CID_[A-Za-z0-9]{15}$`)
	reLookup  = regexp.MustCompile(`^MLRP_[A-Za-z0-9]{15}$`)
	reUser    = regexp.MustCompile(`^UR_[A-Za-z0-9]{15}$`)
	reLink    = regexp.MustCompile(`^https://acme\.fra1\.qualtrics\.com/jfe/form/(SV_[A-Za-z0-9]{15})\?Q_CHL=email&Q_DL=(EMD_[A-Za-z0-9]{15})_([A-Za-z0-9]{15})_(MLRP_[A-Za-z0-9]{15})$`)
)

func TestGeneratedBrandIsRealistic(t *testing.T) {
	t.Parallel()
	named := []string{"alice@example.com", "bob@example.com"}
	b := Generate(3, Spec{BrandID: "acme", Datacenter: "fra1", Surveys: 20, Recipients: 3000, Emails: named, Now: testNow})
	dists := map[string]Distribution{}
	for _, d := range b.Distributions {
		dists[d.ID] = d
	}
	statuses, types := map[string]bool{}, map[string]bool{}
	namedSurveys := map[string]map[string]bool{}
	var messy, accented, expPast, expSoon, expFar, active, inactive int
	for _, sv := range b.Surveys {
		if !reSurvey.MatchString(sv.ID) || !reUser.MatchString(sv.OwnerID) {
			t.Errorf("survey ids %s %s", sv.ID, sv.OwnerID)
		}
		if sv.IsActive {
			active++
		} else {
			inactive++
		}
	}
	for _, d := range b.Distributions {
		types[d.RequestType] = true
		if !reDist.MatchString(d.ID) {
			t.Errorf("distribution id %s", d.ID)
		}
		if d.Stats != ComputeStats(d.Recipients) {
			t.Errorf("%s: stats %+v disagree with recipients %+v", d.ID, d.Stats, ComputeStats(d.Recipients))
		}
		switch e := d.LinkExpiration.Sub(testNow); {
		case d.RequestType != RequestInvite:
		case e < 0:
			expPast++
		case e < 24*time.Hour:
			expSoon++
		default:
			expFar++
		}
		if d.ParentDistributionID != "" {
			p, ok := dists[d.ParentDistributionID]
			if !ok || p.RequestType != RequestInvite || p.SurveyID != d.SurveyID {
				t.Errorf("%s %s: parent %s is not an invite of the same survey", d.RequestType, d.ID, d.ParentDistributionID)
			}
			if d.RequestType == RequestReminder && !sameContacts(p.Recipients, d.Recipients) {
				t.Errorf("reminder %s does not go to its invite's recipients", d.ID)
			}
		}
		for _, rc := range d.Recipients {
			if d.RequestType != RequestTestEmail {
				statuses[rc.Status] = true
			}
			if !reContact.MatchString(rc.ContactID) || !reLookup.MatchString(rc.ContactLookupID) {
				t.Errorf("recipient ids %s %s", rc.ContactID, rc.ContactLookupID)
			}
			m := reLink.FindStringSubmatch(rc.Link)
			if m == nil || m[1] != d.SurveyID || m[3] != strings.TrimPrefix(d.SurveyID, "SV_") || m[4] != rc.ContactLookupID {
				t.Errorf("link %q of %s", rc.Link, d.ID)
			}
			if rc.Email != strings.ToLower(strings.TrimSpace(rc.Email)) {
				messy++
			}
			if strings.ContainsAny(rc.FirstName+rc.LastName, "ëçøüéåłñ") {
				accented++
			}
			for _, e := range named {
				if strings.EqualFold(strings.TrimSpace(rc.Email), e) {
					if namedSurveys[e] == nil {
						namedSurveys[e] = map[string]bool{}
					}
					namedSurveys[e][d.SurveyID] = true
				}
			}
		}
	}
	for _, s := range AllStatuses {
		if !statuses[s] {
			t.Errorf("status %s never generated", s)
		}
	}
	for _, typ := range []string{RequestInvite, RequestReminder, RequestThankYou, RequestTestEmail} {
		if !types[typ] {
			t.Errorf("no %s distribution", typ)
		}
	}
	for _, e := range named {
		if len(namedSurveys[e]) < 3 {
			t.Errorf("%s is a recipient in %d surveys, want several", e, len(namedSurveys[e]))
		}
	}
	for name, n := range map[string]int{
		"messy emails": messy, "accented names": accented, "expired invites": expPast,
		"invites expiring within 24h": expSoon, "invites expiring later": expFar,
		"active surveys": active, "inactive surveys": inactive,
	} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
}

func sameContacts(a, b []Recipient) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ContactID != b[i].ContactID {
			return false
		}
	}
	return true
}

func TestServedStatsAgreeWithServedHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 3, Recipients: 600})
	for _, sv := range f.sim.Surveys(f.brand.ID) {
		dists, _ := walk(t, f.http.URL+"/API/v3/distributions?surveyId="+sv.ID, f.adminToken())
		for _, d := range dists {
			if d["requestType"] == RequestTestEmail {
				continue
			}
			id := d["id"].(string)
			hist, _ := walk(t, f.http.URL+"/API/v3/distributions/"+id+"/history", f.adminToken())
			var rs []Recipient
			for _, h := range hist {
				rs = append(rs, Recipient{Status: h["status"].(string)})
			}
			var served Stats
			raw, _ := json.Marshal(d["stats"])
			_ = json.Unmarshal(raw, &served)
			if served != ComputeStats(rs) {
				t.Errorf("%s: served stats %+v, history says %+v", id, served, ComputeStats(rs))
			}
		}
	}
}

func TestSetRecipientStatusChangesHistoryAndStats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  string
		counter func(Stats) int
		dates   []string // history fields that must be set
		nulls   []string // and those that must stay null
	}{
		{"a delivered email counts as sent", StatusSuccess, func(s Stats) int { return s.Sent }, []string{"sentAt"}, []string{"openedAt", "responseId"}},
		{"an opened email counts as opened", StatusOpened, func(s Stats) int { return s.Opened }, []string{"sentAt", "openedAt"}, []string{"responseStartedAt"}},
		{"a started survey counts as started", StatusSurveyStarted, func(s Stats) int { return s.Started }, []string{"responseStartedAt", "surveySessionId"}, []string{"responseId", "responseCompletedAt"}},
		{"a finished survey counts as finished", StatusSurveyFinished, func(s Stats) int { return s.Finished }, []string{"sentAt", "openedAt", "responseStartedAt", "responseCompletedAt", "responseId"}, nil},
		{"a hard bounce counts as bounced", StatusHardBounce, func(s Stats) int { return s.Bounced }, []string{"sentAt"}, []string{"openedAt"}},
		{"a blocked address counts as blocked", StatusBlocked, func(s Stats) int { return s.Blocked }, nil, []string{"sentAt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Spec{Surveys: 1, Recipients: 5})
			d, rs := pendingDistribution(t, f, 3)
			at := time.Date(2025, 6, 3, 8, 0, 0, 123e6, time.UTC)
			if _, err := f.sim.SetRecipientStatus(d.ID, rs[1].ContactID, tc.status, at); err != nil {
				t.Fatal(err)
			}
			hist, _ := walk(t, f.http.URL+"/API/v3/distributions/"+d.ID+"/history", f.adminToken())
			row := hist[1]
			if row["status"] != tc.status {
				t.Fatalf("history status %v", row["status"])
			}
			for _, k := range tc.dates {
				if row[k] == nil {
					t.Errorf("%s is null", k)
				}
			}
			for _, k := range tc.nulls {
				if row[k] != nil {
					t.Errorf("%s = %v, want null", k, row[k])
				}
			}
			if row["sentAt"] != nil && row["sentAt"] != "2025-06-03T08:00:00.123Z" {
				t.Errorf("sentAt %v, want milliseconds", row["sentAt"])
			}
			got := f.get(t, "distributions/"+d.ID+"?surveyId="+d.SurveyID, f.adminToken()).envelope(t)["result"].(map[string]any)
			var served Stats
			raw, _ := json.Marshal(got["stats"])
			_ = json.Unmarshal(raw, &served)
			if tc.counter(served) != 1 || served != ComputeStats(f.sim.Recipients(d.ID)) {
				t.Errorf("stats %+v after one %s", served, tc.status)
			}
			if got["modifiedDate"] != "2025-06-03T08:00:00Z" {
				t.Errorf("modifiedDate %v", got["modifiedDate"])
			}
		})
	}
	t.Run("moving back to Pending clears the dates and the counts", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Spec{Surveys: 1, Recipients: 5})
		d, rs := pendingDistribution(t, f, 1)
		_, _ = f.sim.SetRecipientStatus(d.ID, rs[0].ContactID, StatusSurveyFinished, testNow)
		_, _ = f.sim.SetRecipientStatus(d.ID, rs[0].ContactID, StatusPending, testNow)
		got, _ := f.sim.Distribution(d.ID)
		rc := f.sim.Recipients(d.ID)[0]
		if got.Stats != (Stats{}) || !rc.SentAt.IsZero() || rc.ResponseID != "" {
			t.Errorf("stats %+v, recipient %+v", got.Stats, rc)
		}
	})
	t.Run("an unknown recipient is an error", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Spec{Surveys: 1, Recipients: 5})
		d, _ := pendingDistribution(t, f, 1)
		if _, err := f.sim.SetRecipientStatus(d.ID, "CID_nope", StatusSuccess, testNow); err == nil {
			t.Error("no error")
		}
	})
}

func TestDeactivatingASurveyShowsInTheList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 2, Recipients: 10})
	sv := f.sim.Surveys(f.brand.ID)[0]
	for _, active := range []bool{false, true} {
		if _, err := f.sim.SetSurveyActive(sv.ID, active); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, "surveys/"+sv.ID, f.adminToken()).envelope(t)["result"].(map[string]any)
		if got["isActive"] != active {
			t.Errorf("isActive %v, want %v", got["isActive"], active)
		}
	}
}

func TestMainServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--addr", "127.0.0.1:0", "--surveys", "3", "--recipients", "30", "--brands", "2", "--emails", "alice@example.com"}, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	tokens := map[string]string{}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "url":
			base = f[1]
		case len(f) == 6 && f[0] == "brand":
			tokens[f[1]] = f[3]
		}
		if len(tokens) == 2 {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" || len(tokens) != 2 {
		t.Fatalf("base %q tokens %v", base, tokens)
	}
	for brand, tok := range tokens {
		r := getURL(t, base+"whoami", tok)
		if r.status != 200 || r.envelope(t)["result"].(map[string]any)["brandId"] != brand {
			t.Errorf("whoami with %s's token: %d %s", brand, r.status, r.body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return after cancel")
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	t.Parallel()
	if err := Main(context.Background(), []string{"--brands", "0"}, io.Discard); err == nil {
		t.Error("no error for --brands 0")
	}
}

func BenchmarkGenerate100kRecipients(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Generate(1, Spec{Surveys: 200, Recipients: 100_000, Now: testNow})
	}
}

func BenchmarkServeLinksPageOf100kBrand(b *testing.B) {
	brand := Generate(1, Spec{Surveys: 200, Recipients: 100_000, Now: testNow})
	sim := New(Options{Brands: []*Brand{brand}, Limits: &Limits{Disabled: true}})
	var d Distribution
	for _, x := range brand.Distributions {
		if len(x.Recipients) > len(d.Recipients) {
			d = x
		}
	}
	mid := d.Recipients[len(d.Recipients)/2].ContactLookupID
	req := httptestRequest("/API/v3/distributions/"+d.ID+"/links?surveyId="+d.SurveyID+"&skipToken="+mid, brand.Users[0].Tokens[0])
	b.ReportAllocs()
	for b.Loop() {
		w := &discardWriter{h: map[string][]string{}}
		sim.ServeHTTP(w, req)
		if w.status != 0 && w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}
