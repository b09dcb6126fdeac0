package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"pgregory.net/rapid"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/web"
)

// The generated world: a few integrations, each with Brand Admins, surveys,
// distributions and recipients drawn from a small pool of people, so people
// recur across tenants.
var people = []string{"ann@example.com", "bob@example.com", "cat@example.org", "dan@corp.example", "eve@example.com"}

type worldRecipient struct {
	person int
	status string
}

type worldDist struct {
	id         string
	recipients []worldRecipient
}

type worldSurvey struct {
	id    string
	dists []worldDist
}

type worldIntegration struct {
	id      string
	admins  []int
	surveys []worldSurvey
	notes   []int // one new_survey notification per entry, to that person
}

type world []worldIntegration

var statuses = []string{"Success", "Opened", "SurveyStarted", "SurveyFinished"}

func drawWorld(t *rapid.T) world {
	nInts := rapid.IntRange(2, 3).Draw(t, "integrations")
	w := make(world, nInts)
	for i := range w {
		in := &w[i]
		in.id = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		for p := range people {
			if rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("admin%d_%d", i, p)) == 0 {
				in.admins = append(in.admins, p)
			}
		}
		for s := range rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("surveys%d", i)) {
			sv := worldSurvey{id: fmt.Sprintf("SV_%d%d", i, s)}
			for d := range rapid.IntRange(1, 2).Draw(t, fmt.Sprintf("dists%d_%d", i, s)) {
				wd := worldDist{id: fmt.Sprintf("EMD_%d%d%d", i, s, d)}
				for p := range people {
					if st := rapid.IntRange(-2, len(statuses)-1).Draw(t, fmt.Sprintf("r%d_%d_%d_%d", i, s, d, p)); st >= 0 {
						wd.recipients = append(wd.recipients, worldRecipient{person: p, status: statuses[st]})
					}
				}
				sv.dists = append(sv.dists, wd)
			}
			in.surveys = append(in.surveys, sv)
		}
		in.notes = rapid.SliceOfN(rapid.IntRange(0, len(people)-1), 0, 4).Draw(t, fmt.Sprintf("notes%d", i))
	}
	return w
}

func (w world) load(t testing.TB, st *store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	ex := func(sql string, args ...any) {
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	ex(`DELETE FROM integrations`)
	for i, in := range w {
		ex(`INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, last_success_at)
			VALUES ($1, $2, $2, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', 'active', $3)`, in.id, fmt.Sprintf("Group %d", i), now)
		for _, p := range in.admins {
			ex(`INSERT INTO brand_admins (integration_id, email) VALUES ($1, $2)`, in.id, people[p])
		}
		for _, sv := range in.surveys {
			ex(`INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date) VALUES ($1, $2, $3, true, $4)`,
				in.id, sv.id, "Survey "+sv.id, now.Add(30*24*time.Hour))
			for _, d := range sv.dists {
				ex(`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, send_date, created_date, link_expiration, sent)
					VALUES ($1, $2, $3, 'Invite', $4, $4, $5, $6)`, in.id, d.id, sv.id, now.Add(-time.Hour), now.Add(7*24*time.Hour), len(d.recipients))
				for _, r := range d.recipients {
					ex(`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at, respond_link)
						VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, in.id, d.id, fmt.Sprintf("CID_%d", r.person), sv.id, people[r.person], r.status,
						now.Add(-time.Hour), "https://iad1.qualtrics.com/jfe/form/"+sv.id+"?Q_DL="+d.id+fmt.Sprint(r.person))
				}
			}
		}
		for k, p := range in.notes {
			ex(`INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, data, created_at, expires_at)
				VALUES ($1, 'new_survey', $2, $3, $4, '', '{}', $5, $6)`, in.id, fmt.Sprintf("n:%s:%d", in.id, k), people[p],
				in.surveys[0].id, now.Add(-time.Minute), now.Add(47*time.Hour))
		}
	}
}

// mayRespond says whether person p has a row in the distribution, and
// whether it is unfinished.
func (w world) rowOf(p int, intID, distID string) (has, open bool) {
	for _, in := range w {
		for _, sv := range in.surveys {
			for _, d := range sv.dists {
				if in.id != intID || d.id != distID {
					continue
				}
				for _, r := range d.recipients {
					if r.person == p {
						return true, r.status != "SurveyFinished"
					}
				}
			}
		}
	}
	return false, false
}

// surveysOf is what My active surveys may show person p: "integration/survey"
// → whether p must see it (every row of p in it unfinished).
func (w world) surveysOf(p int) map[string]bool {
	out := map[string]bool{}
	for _, in := range w {
		for _, sv := range in.surveys {
			has, allOpen := false, true
			for _, d := range sv.dists {
				for _, r := range d.recipients {
					if r.person == p {
						has = true
						allOpen = allOpen && r.status != "SurveyFinished"
					}
				}
			}
			if has {
				out[in.id+"/"+sv.id] = allOpen
			}
		}
	}
	return out
}

func (w world) adminOf(p int, intID string) bool {
	for _, in := range w {
		if in.id == intID && slices.Contains(in.admins, p) {
			return true
		}
	}
	return false
}

func (w world) owner(surveyOrDist string) string {
	for _, in := range w {
		for _, sv := range in.surveys {
			if sv.id == surveyOrDist {
				return in.id
			}
			for _, d := range sv.dists {
				if d.id == surveyOrDist {
					return in.id
				}
			}
		}
	}
	return ""
}

// randomCase spells an email the way an identity provider might.
func randomCase(t *rapid.T, email string) string {
	b := []byte(email)
	for i := range b {
		if b[i] >= 'a' && b[i] <= 'z' && rapid.Bool().Draw(t, "upper") {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// TestTenantIsolation generates random organisations and checks, for random
// users signed in through the trusted proxy header (in any letter case), that
// every page and /api/v1/me answer holds only rows they may see, and that
// another user's item or another integration's admin page is a 404.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	srv, err := web.New(web.Options{Store: st, AuthMode: web.AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	pages, me := srv.Handler(), srv.MeAPI()
	requests := 0
	rapid.Check(t, func(rt *rapid.T) {
		w := drawWorld(rt)
		w.load(t, st, now)
		get := func(email, path string) *httptest.ResponseRecorder {
			requests++
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("X-Forwarded-Email", email)
			rec := httptest.NewRecorder()
			if strings.HasPrefix(path, "/api/v1/me/") {
				me.ServeHTTP(rec, req)
			} else {
				pages.ServeHTTP(rec, req)
			}
			if rec.Code >= 500 {
				rt.Fatalf("GET %s as %s: %d\n%s", path, email, rec.Code, rec.Body)
			}
			return rec
		}
		for _, p := range rapid.SliceOfNDistinct(rapid.IntRange(0, len(people)-1), 1, 2, rapid.ID[int]).Draw(rt, "users") {
			email := randomCase(rt, people[p])
			may := w.surveysOf(p)

			// My active surveys, page and JSON.
			rec := get(email, "/")
			if rec.Code != http.StatusOK {
				rt.Fatalf("/ as %s: %d", email, rec.Code)
			}
			doc, _ := goquery.NewDocumentFromReader(rec.Body)
			shown := map[string]bool{}
			doc.Find(`[data-testid="survey-row"]`).Each(func(_ int, s *goquery.Selection) {
				id, _ := s.Attr("data-survey-id")
				shown[w.owner(id)+"/"+id] = true
			})
			for k := range shown {
				if _, ok := may[k]; !ok {
					rt.Fatalf("%s sees survey %s on My active surveys, without being a recipient", email, k)
				}
			}
			for k, must := range may {
				if must && !shown[k] {
					rt.Fatalf("%s does not see %s, where every invitation is unfinished", email, k)
				}
			}
			rec = get(email, "/api/v1/me/surveys")
			var mine struct {
				Items []struct{ IntegrationID, SurveyID, DistributionID string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &mine); err != nil || rec.Code != http.StatusOK {
				rt.Fatalf("/api/v1/me/surveys: %d %v", rec.Code, err)
			}
			if len(mine.Items) != len(shown) {
				rt.Fatalf("/api/v1/me/surveys has %d items, the page %d", len(mine.Items), len(shown))
			}
			for _, it := range mine.Items {
				if has, _ := w.rowOf(p, it.IntegrationID, it.DistributionID); !has || !shown[it.IntegrationID+"/"+it.SurveyID] {
					rt.Fatalf("/api/v1/me/surveys gives %s %+v", email, it)
				}
			}

			// Survey details of every distribution, and of every distribution
			// under every other integration's id.
			for _, in := range w {
				for _, owner := range w {
					for _, sv := range owner.surveys {
						for _, d := range sv.dists {
							has, open := w.rowOf(p, in.id, d.id)
							code := get(email, "/surveys/"+in.id+"/"+d.id).Code
							if !has && code != http.StatusNotFound {
								rt.Fatalf("%s opens /surveys/%s/%s (not theirs): %d", email, in.id, d.id, code)
							}
							if has && open && code != http.StatusOK {
								rt.Fatalf("%s cannot open their /surveys/%s/%s: %d", email, in.id, d.id, code)
							}
						}
					}
				}
			}

			// The feed, page and JSON.
			wantNotes := 0
			for _, in := range w {
				for _, n := range in.notes {
					if n == p {
						wantNotes++
					}
				}
			}
			rec = get(email, "/notifications")
			doc, _ = goquery.NewDocumentFromReader(rec.Body)
			if n := doc.Find(`[data-testid="notification"]`).Length(); rec.Code != http.StatusOK || n != wantNotes {
				rt.Fatalf("%s's feed: %d, %d notifications, want %d", email, rec.Code, n, wantNotes)
			}
			rec = get(email, "/api/v1/me/notifications")
			var notes struct{ Items []struct{ ID int64 } }
			_ = json.Unmarshal(rec.Body.Bytes(), &notes)
			if len(notes.Items) != wantNotes {
				rt.Fatalf("%s's /api/v1/me/notifications: %d items, want %d", email, len(notes.Items), wantNotes)
			}
			for _, it := range notes.Items {
				var owner string
				_ = st.Pool().QueryRow(context.Background(), `SELECT email FROM notifications WHERE id = $1`, it.ID).Scan(&owner)
				if owner != people[p] {
					rt.Fatalf("%s is given notification %d of %q", email, it.ID, owner)
				}
			}

			// Admin pages.
			adminAny := false
			for _, in := range w {
				adminAny = adminAny || w.adminOf(p, in.id)
			}
			rec = get(email, "/admin/surveys")
			if !adminAny {
				if rec.Code != http.StatusNotFound {
					rt.Fatalf("%s administers nothing but /admin/surveys is %d", email, rec.Code)
				}
			} else {
				doc, _ = goquery.NewDocumentFromReader(rec.Body)
				doc.Find(`[data-testid="survey-row"]`).Each(func(_ int, s *goquery.Selection) {
					id, _ := s.Attr("data-survey-id")
					if !w.adminOf(p, w.owner(id)) {
						rt.Fatalf("%s sees %s of %s on Open surveys", email, id, w.owner(id))
					}
				})
			}
			for _, in := range w {
				for _, owner := range w {
					for _, sv := range owner.surveys {
						want := http.StatusNotFound
						if w.adminOf(p, in.id) && owner.id == in.id {
							want = http.StatusOK
						}
						if code := get(email, "/admin/surveys/"+in.id+"/"+sv.id).Code; code != want {
							rt.Fatalf("%s: /admin/surveys/%s/%s is %d, want %d", email, in.id, sv.id, code, want)
						}
						for _, d := range sv.dists {
							if code := get(email, "/admin/distributions/"+in.id+"/"+d.id).Code; code != want {
								rt.Fatalf("%s: /admin/distributions/%s/%s is %d, want %d", email, in.id, d.id, code, want)
							}
						}
					}
				}
			}
		}
	})
	t.Logf("%d requests checked", requests)
}
