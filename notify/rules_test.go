package notify_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/store"
)

const h = time.Hour

// step runs the rules at t0+at (after mutate, when set) and expects raised
// new notifications.
type step struct {
	at     time.Duration
	mutate string // SQL run first, $1 = integration id
	raised int
}

func key(kind, integ string, parts ...string) string {
	k := kind + ":" + integ
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

func unix(d time.Duration) string { return strconv.FormatInt(t0.Add(d).Unix(), 10) }

func TestCheckWindowsExpiringRules(t *testing.T) {
	t.Parallel()
	// One database for all cases: each case has its own integration and the
	// check is scoped to it.
	f := newFixture(t)
	n := notify.New(notify.Options{Store: f.s})

	one := func(integ string, exp *time.Time, status string) {
		f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse"})
		f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1"})
		f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", Status: status, LinkExpiration: exp})
	}
	cases := []struct {
		name  string
		integ integrationRow
		setup func(integ string)
		steps []step
		keys  func(integ string) []string
	}{
		{
			name:  "a link expiring in 23 hours gets one notice, and a re-run raises nothing",
			setup: func(i string) { one(i, at(23*h), "Success") },
			steps: []step{{at: 0, raised: 1}, {at: 0, raised: 0}, {at: 2 * h, raised: 0}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(23*h))}
			},
		},
		{
			name:  "a link expiring in 25 hours waits for the window to open",
			setup: func(i string) { one(i, at(25*h), "SurveyStarted") },
			steps: []step{{at: 0, raised: 0}, {at: 59 * time.Minute, raised: 0}, {at: h, raised: 1}, {at: 3 * h, raised: 0}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(25*h))}
			},
		},
		{
			name:  "a recipient who finished before the window opens gets nothing",
			setup: func(i string) { one(i, at(30*h), "Success") },
			steps: []step{{at: 0, raised: 0}, {at: 2 * h, mutate: `UPDATE recipients SET status = 'SurveyFinished' WHERE integration_id = $1`, raised: 0}, {at: 7 * h, raised: 0}},
		},
		{
			name:  "a recipient who finishes after the window opened keeps the one notice",
			setup: func(i string) { one(i, at(20*h), "Success") },
			steps: []step{{at: 0, raised: 1}, {at: h, mutate: `UPDATE recipients SET status = 'SurveyFinished' WHERE integration_id = $1`, raised: 0}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(20*h))}
			},
		},
		{
			name:  "a screened-out recipient gets nothing",
			setup: func(i string) { one(i, at(20*h), "SurveyScreenedOut") },
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name:  "an expired link gets nothing",
			setup: func(i string) { one(i, at(-h), "Success") },
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name:  "a recipient not yet sent to (Pending) gets nothing",
			setup: func(i string) { one(i, at(20*h), "Pending") },
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name:  "an integration before its first full sync raises nothing",
			integ: integrationRow{NeverSynced: true},
			setup: func(i string) { one(i, at(20*h), "Success") },
			steps: []step{{at: 0, raised: 0}, {at: h, mutate: `UPDATE integrations SET first_full_sync_at = now() WHERE id = $1`, raised: 1}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(20*h))}
			},
		},
		{
			name: "a test email gets nothing",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1", Type: "TestEmail"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "a deleted survey gets nothing",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1", Deleted: true})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "an inactive survey gets nothing",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1", Inactive: true})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "a survey activated inside the window is announced at the next check",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1", Inactive: true})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
			},
			steps: []step{
				{at: 0, raised: 0},
				{at: h, mutate: `UPDATE surveys SET is_active = true WHERE integration_id = $1`, raised: 1},
				{at: 2 * h, raised: 0},
			},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(20*h))}
			},
		},
		{
			name: "a bounced or blocked invitation reached no one: no expiry notice",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				for n, st := range []string{"HardBounce", "SoftBounce", "Blocked", "Failure", "Skipped", "Pending"} {
					f.recip(i, recipRow{Dist: "EMD_1", Contact: fmt.Sprintf("CID_%d", n), Survey: "SV_1", Email: fmt.Sprintf("u%d@example.com", n),
						Status: st, LinkExpiration: at(20 * h)})
				}
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "a deleted distribution or recipient row gets nothing",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1", Deleted: true})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_2", Survey: "SV_1", Email: "bob@example.com", LinkExpiration: at(20 * h), Deleted: true})
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "the expiry falls back to the distribution's link, then to the survey's end date",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1", EndDate: at(10 * h)})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1", LinkExpiration: at(22 * h)})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com"})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_2", Survey: "SV_1", Email: "bob@example.com"})
			},
			steps: []step{{at: 0, raised: 2}},
			keys: func(i string) []string {
				return []string{
					key("survey_expiring", i, "SV_1", "ann@example.com", unix(22*h)),
					key("survey_expiring", i, "SV_1", "bob@example.com", unix(10*h)),
				}
			},
		},
		{
			name: "two invitations of one survey give one notice, for the invitation expiring last",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_3", SurveyID: "SV_1", Parent: "EMD_1", Type: "Reminder"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(10 * h)})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_9", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
				f.recip(i, recipRow{Dist: "EMD_3", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(10 * h)})
			},
			steps: []step{{at: 0, raised: 1}, {at: 11 * h, raised: 0}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(20*h))}
			},
		},
		{
			name: "an invitation still open past the window holds the notice back",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(10 * h)})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_9", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(40 * h)})
			},
			steps: []step{{at: 0, raised: 0}, {at: 16 * h, raised: 1}},
			keys: func(i string) []string {
				return []string{key("survey_expiring", i, "SV_1", "ann@example.com", unix(40*h))}
			},
		},
		{
			name: "finishing through one invitation silences the others",
			setup: func(i string) {
				f.survey(i, surveyRow{ID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_1", SurveyID: "SV_1"})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", Status: "SurveyFinished", LinkExpiration: at(10 * h)})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_9", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
			},
			steps: []step{{at: 0, raised: 0}},
		},
		{
			name: "a link extended after the notice is announced again near its new expiry",
			setup: func(i string) {
				one(i, at(20*h), "Success")
			},
			steps: []step{
				{at: 0, raised: 1},
				{at: h, mutate: `UPDATE recipients SET link_expiration = link_expiration + interval '48 hours' WHERE integration_id = $1`, raised: 0},
				{at: 45 * h, raised: 1},
			},
			keys: func(i string) []string {
				return []string{
					key("survey_expiring", i, "SV_1", "ann@example.com", unix(20*h)),
					key("survey_expiring", i, "SV_1", "ann@example.com", unix(68*h)),
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			integ := f.integration(tc.integ)
			tc.setup(integ)
			for i, st := range tc.steps {
				if st.mutate != "" {
					f.exec(st.mutate, integ)
				}
				got, err := n.CheckWindows(f.ctx, integ, t0.Add(st.at))
				if err != nil {
					t.Fatal(err)
				}
				if got != st.raised {
					t.Fatalf("step %d (t0%+v): raised %d, want %d", i, st.at, got, st.raised)
				}
			}
			var want []string
			if tc.keys != nil {
				want = tc.keys(integ)
			}
			got := keysOf(f, integ)
			if !equal(got, want) {
				t.Fatalf("dedupe keys:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func keysOf(f *fixture, integ string) []string {
	var out []string
	for _, r := range f.notifications() {
		if len(r.DedupeKey) > len(integ) && contains(r.DedupeKey, integ) {
			out = append(out, r.DedupeKey)
		}
	}
	return out
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExpiringNoticeCarriesTheFeedData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := notify.New(notify.Options{Store: f.s, FeedLifetime: 12 * h, ExpiryWindow: 2 * h})
	integ := f.integration(integrationRow{})
	f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse Q1"})
	f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1"})
	f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com",
		Link: "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=x", LinkExpiration: at(3 * h)})

	if got, _ := n.CheckWindows(f.ctx, "", t0); got != 0 {
		t.Fatalf("a 2 h window raised %d for an expiry 3 h away", got)
	}
	now := t0.Add(90 * time.Minute)
	if got, err := n.CheckWindows(f.ctx, "", now); err != nil || got != 1 {
		t.Fatalf("raised %d, %v", got, err)
	}
	rows := f.notifications()
	r := rows[0]
	if r.Kind != "survey_expiring" || r.Email != "ann@example.com" || r.SurveyID != "SV_1" || r.DistributionID != "EMD_1" || r.ContactID != "CID_1" {
		t.Fatalf("row %+v", r)
	}
	if !r.CreatedAt.Equal(now) || !r.ExpiresAt.Equal(now.Add(12*h)) {
		t.Fatalf("created %v expires %v, want %v and +12h", r.CreatedAt, r.ExpiresAt, now)
	}
	want := map[string]any{"surveyName": "Pulse Q1", "functionalGroup": "Sales",
		"expiresAt": "2026-03-02T15:00:00Z", "respondLink": "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=x"}
	assertData(t, r.Data, want)
}

func assertData(t *testing.T, got, want map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("data keys: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("data[%q] = %#v, want %#v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestCheckWindowsStatisticsRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := notify.New(notify.Options{Store: f.s})
	admins := []string{"boss@example.com", "chief@example.com"}

	cases := []struct {
		name  string
		integ integrationRow
		dist  distRow
		surv  surveyRow
		steps []step
		count int // notifications in the end
		link  string
	}{
		{
			name: "a distribution expiring in 23 hours tells every Brand Admin once",
			dist: distRow{LinkExpiration: at(23 * h), Sent: 40, Finished: 10}, steps: []step{{raised: 2}, {raised: 0}, {at: 2 * h, raised: 0}},
			count: 2, link: "https://iad1.qualtrics.com/Q/MyProjectsSection",
		},
		{
			name:  "the brand's own host is used for the review link",
			integ: integrationRow{BrandBaseURL: "https://acme.qualtrics.com"},
			dist:  distRow{LinkExpiration: at(23 * h)}, steps: []step{{raised: 2}},
			count: 2, link: "https://acme.qualtrics.com/Q/MyProjectsSection",
		},
		{
			name:  "the integration's reviewDistributions deep link wins",
			integ: integrationRow{BrandBaseURL: "https://acme.qualtrics.com", DeepLinks: map[string]string{"reviewDistributions": "https://{host}/distributions/{surveyId}/{distributionId}"}},
			dist:  distRow{LinkExpiration: at(23 * h)}, steps: []step{{raised: 2}},
			count: 2, link: "https://acme.qualtrics.com/distributions/SV_1/EMD_1",
		},
		{
			name: "a distribution expiring in 25 hours waits for the window",
			dist: distRow{LinkExpiration: at(25 * h)}, steps: []step{{raised: 0}, {at: h, raised: 2}}, count: 2,
			link: "https://iad1.qualtrics.com/Q/MyProjectsSection",
		},
		{name: "a reminder raises no statistics", dist: distRow{LinkExpiration: at(23 * h), Parent: "EMD_0", Type: "Reminder"}, steps: []step{{raised: 0}}},
		{name: "a test email raises no statistics", dist: distRow{LinkExpiration: at(23 * h), Type: "TestEmail"}, steps: []step{{raised: 0}}},
		{name: "an expired distribution raises nothing", dist: distRow{LinkExpiration: at(-h)}, steps: []step{{raised: 0}}},
		{name: "a distribution without expiry raises nothing", dist: distRow{}, steps: []step{{raised: 0}}},
		{name: "a deleted distribution raises nothing", dist: distRow{LinkExpiration: at(23 * h), Deleted: true}, steps: []step{{raised: 0}}},
		{name: "an inactive survey raises nothing", surv: surveyRow{Inactive: true}, dist: distRow{LinkExpiration: at(23 * h)}, steps: []step{{raised: 0}}},
		{name: "a deleted survey raises nothing", surv: surveyRow{Deleted: true}, dist: distRow{LinkExpiration: at(23 * h)}, steps: []step{{raised: 0}}},
		{name: "an integration before its first full sync raises nothing", integ: integrationRow{NeverSynced: true}, dist: distRow{LinkExpiration: at(23 * h)}, steps: []step{{raised: 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.integ.Admins = admins
			integ := f.integration(tc.integ)
			tc.surv.ID, tc.surv.Name = "SV_1", "Pulse"
			f.survey(integ, tc.surv)
			tc.dist.ID, tc.dist.SurveyID = "EMD_1", "SV_1"
			f.dist(integ, tc.dist)
			for i, st := range tc.steps {
				got, err := n.CheckWindows(f.ctx, integ, t0.Add(st.at))
				if err != nil {
					t.Fatal(err)
				}
				if got != st.raised {
					t.Fatalf("step %d: raised %d, want %d", i, got, st.raised)
				}
			}
			var rows []row
			for _, r := range f.notifications() {
				if contains(r.DedupeKey, integ) {
					rows = append(rows, r)
				}
			}
			if len(rows) != tc.count {
				t.Fatalf("%d notifications, want %d", len(rows), tc.count)
			}
			for i, r := range rows {
				wantKey := key("survey_statistics", integ, "EMD_1", admins[i])
				if r.Kind != "survey_statistics" || r.DedupeKey != wantKey || r.Email != admins[i] || r.DistributionID != "EMD_1" || r.SurveyID != "SV_1" {
					t.Fatalf("row %+v, want key %s", r, wantKey)
				}
				want := map[string]any{"surveyName": "Pulse", "functionalGroup": "Sales",
					"sentAt": t0.Add(-72 * h).Format(time.RFC3339), "sent": float64(tc.dist.Sent), "finished": float64(tc.dist.Finished),
					"expiresAt": tc.dist.LinkExpiration.Format(time.RFC3339)}
				assertData(t, r.Data, want)
				// The review link is built when shown, by the pages' builder.
				if got := links.ReviewDistributionsURL(links.Integration{BaseURL: "https://iad1.qualtrics.com/API/v3/",
					BrandBaseURL: tc.integ.BrandBaseURL, DeepLinks: tc.integ.DeepLinks}, r.SurveyID, r.DistributionID); got != tc.link {
					t.Fatalf("review link %q, want %q", got, tc.link)
				}
			}
		})
	}
}

func TestOnChangesNewSurveyRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	metrics := &countingMetrics{}
	n := notify.New(notify.Options{Store: f.s, Metrics: metrics})

	base := func(i string, d distRow, s surveyRow, r recipRow) {
		s.ID, d.ID, d.SurveyID = "SV_1", "EMD_1", "SV_1"
		if s.Name == "" {
			s.Name = "Pulse"
		}
		f.survey(i, s)
		f.dist(i, d)
		r.Dist, r.Contact, r.Survey = "EMD_1", "CID_1", "SV_1"
		if r.Email == "" {
			r.Email = "ann@example.com"
		}
		f.recip(i, r)
	}
	cases := []struct {
		name    string
		integ   integrationRow
		setup   func(i string)
		changes []store.Change
		raised  []int // per call
	}{
		{
			name:    "a delivered recipient of a live survey is told once",
			setup:   func(i string) { base(i, distRow{}, surveyRow{}, recipRow{LinkExpiration: at(72 * h)}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{1, 0},
		},
		{
			name:    "a survey without any expiry still counts as live",
			setup:   func(i string) { base(i, distRow{}, surveyRow{}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{1},
		},
		{
			name:    "a reminder never announces the survey",
			setup:   func(i string) { base(i, distRow{Parent: "EMD_0", Type: "Reminder"}, surveyRow{}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "a test email is not announced",
			setup:   func(i string) { base(i, distRow{Type: "TestEmail"}, surveyRow{}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "an inactive survey is not announced",
			setup:   func(i string) { base(i, distRow{}, surveyRow{Inactive: true}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "a deleted survey is not announced",
			setup:   func(i string) { base(i, distRow{}, surveyRow{Deleted: true}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "an expired link is not announced",
			setup:   func(i string) { base(i, distRow{LinkExpiration: at(-h)}, surveyRow{}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "a recipient who already finished is not told",
			setup:   func(i string) { base(i, distRow{}, surveyRow{}, recipRow{Status: "SurveyFinished"}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "a row still Pending is not told",
			setup:   func(i string) { base(i, distRow{}, surveyRow{}, recipRow{Status: "Pending"}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:    "an integration before its first full sync raises nothing",
			integ:   integrationRow{NeverSynced: true},
			setup:   func(i string) { base(i, distRow{}, surveyRow{}, recipRow{}) },
			changes: []store.Change{delivered("EMD_1", "CID_1")},
			raised:  []int{0},
		},
		{
			name:  "other kinds of change raise nothing",
			setup: func(i string) { base(i, distRow{}, surveyRow{}, recipRow{}) },
			changes: []store.Change{{Kind: "recipient_status", DistributionID: "EMD_1", ContactID: "CID_1"},
				{Kind: "survey_new", SurveyID: "SV_1"}, {Kind: "distribution_new", DistributionID: "EMD_1"}},
			raised: []int{0},
		},
		{
			name: "two invitations of one survey in one page give one notification",
			setup: func(i string) {
				base(i, distRow{}, surveyRow{}, recipRow{LinkExpiration: at(10 * h)})
				f.dist(i, distRow{ID: "EMD_2", SurveyID: "SV_1"})
				f.recip(i, recipRow{Dist: "EMD_2", Contact: "CID_7", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(30 * h)})
			},
			changes: []store.Change{delivered("EMD_1", "CID_1"), delivered("EMD_2", "CID_7")},
			raised:  []int{1, 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			integ := f.integration(tc.integ)
			tc.setup(integ)
			for i, want := range tc.raised {
				if got := onChanges(t, f, n, integ, tc.changes, t0.Add(time.Duration(i)*h)); got != want {
					t.Fatalf("call %d raised %d, want %d", i, got, want)
				}
			}
		})
	}

	t.Run("the notification carries the feed data and the chosen invitation", func(t *testing.T) {
		integ := f.integration(integrationRow{})
		f.survey(integ, surveyRow{ID: "SV_9", Name: "Onboarding"})
		f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_9"})
		f.dist(integ, distRow{ID: "EMD_2", SurveyID: "SV_9"})
		f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_9", Email: "zed@example.com", Link: "https://x.qualtrics.com/jfe/form/SV_9?a=1", LinkExpiration: at(10 * h)})
		f.recip(integ, recipRow{Dist: "EMD_2", Contact: "CID_2", Survey: "SV_9", Email: "zed@example.com", Link: "https://x.qualtrics.com/jfe/form/SV_9?a=2", LinkExpiration: at(30 * h)})
		if got := onChanges(t, f, n, integ, []store.Change{delivered("EMD_1", "CID_1"), delivered("EMD_2", "CID_2")}, t0); got != 1 {
			t.Fatalf("raised %d", got)
		}
		var r row
		for _, x := range f.notifications() {
			if x.Email == "zed@example.com" {
				r = x
			}
		}
		if r.DedupeKey != key("new_survey", integ, "SV_9", "zed@example.com") || r.DistributionID != "EMD_2" || r.ContactID != "CID_2" {
			t.Fatalf("row %+v", r)
		}
		if !r.ExpiresAt.Equal(t0.Add(48 * h)) {
			t.Fatalf("feed expiry %v, want 48 h after %v", r.ExpiresAt, t0)
		}
		assertData(t, r.Data, map[string]any{"surveyName": "Onboarding", "functionalGroup": "Sales",
			"expiresAt": "2026-03-03T18:00:00Z", "respondLink": "https://x.qualtrics.com/jfe/form/SV_9?a=2"})
	})

	t.Run("a change naming another integration's recipient raises nothing", func(t *testing.T) {
		other := f.integration(integrationRow{})
		base(other, distRow{}, surveyRow{}, recipRow{Email: "eve@example.com"})
		mine := f.integration(integrationRow{})
		if got := onChanges(t, f, n, mine, []store.Change{delivered("EMD_1", "CID_1")}, t0); got != 0 {
			t.Fatalf("raised %d", got)
		}
	})

	if metrics.raised["new_survey"] < 4 {
		t.Fatalf("metrics counted %v", metrics.raised)
	}
}
