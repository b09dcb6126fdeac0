package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/microapps/microapps/store/storetest"
)

func TestIntegrationsAreListedAPageAtATime(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Traced(t)
	e := newEnvOn(t, st)
	storetest.Fleet(t, st, 7)

	var names []string
	path := "/integrations?limit=3"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the cursor never ends")
		}
		r := e.do("GET", path, nil)
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		body := r.json(t)
		for _, it := range body["items"].([]any) {
			names = append(names, it.(map[string]any)["name"].(string))
		}
		next, ok := body["next"]
		if !ok {
			t.Fatal("no next field")
		}
		if next == nil {
			break
		}
		path = "/integrations?limit=3&cursor=" + url.QueryEscape(next.(string))
	}
	want := []string{"Group 1", "Group 2", "Group 3", "Group 4", "Group 5", "Group 6", "Group 7"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("pages gave %v, want %v (oldest first)", names, want)
	}

	for _, c := range []struct {
		query string
		want  int
	}{
		{"", 7},
		{"?status=paused", 2},         // 3, 6
		{"?status=error", 1},          // 5
		{"?q=group%205", 1},           // case-insensitive
		{"?q=sales", 3},               // the functional group: 2, 4, 6
		{"?q=sales&status=active", 2}, // 2, 4
		{"?q=50%25", 0},               // a % is a character, not a wildcard
		{"?status=active&limit=1", 1},
	} {
		r := e.do("GET", "/integrations"+c.query, nil)
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", c.query, r.status, r.body)
		}
		if got := len(r.json(t)["items"].([]any)); got != c.want {
			t.Errorf("GET /integrations%s: %d items, want %d", c.query, got, c.want)
		}
	}

	for _, bad := range []string{"?limit=0", "?limit=501", "?limit=ten", "?status=deleted",
		"?cursor=bm90LWEtY3Vyc29y", "?cursor=%25%25", "?cursor=MjAyNi0wMS0wMVQwMDowMDowMFp8bm90LWEtdXVpZA"} {
		r := e.do("GET", "/integrations"+bad, nil)
		if r.status != 400 {
			t.Errorf("GET /integrations%s = %d, want 400: %s", bad, r.status, r.body)
		}
	}
}

// Whatever the fleet, a page of the list costs the same round trips to
// PostgreSQL: the page, then its newest runs.
func TestTheIntegrationListReadsInTwoRoundTrips(t *testing.T) {
	t.Parallel()
	st, rt := storetest.Traced(t)
	e := newEnvOn(t, st)
	storetest.Fleet(t, st, 1000)

	for _, query := range []string{"", "?limit=500", "?limit=500&status=active", "?q=group%2099"} {
		path := "/integrations" + query
		var r response
		n := rt.During(func() { r = e.do("GET", path, nil) })
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		if n > 2 {
			t.Errorf("GET %s: %d round trips to PostgreSQL, want at most 2", path, n)
		}
	}
}

// BenchmarkIntegrationList reads pages of a fleet of 1,000 integrations
// through the API (the whole fleet was one 720 KB answer of 1,001
// statements before it paged).
func BenchmarkIntegrationList(b *testing.B) {
	st := storetest.New(b)
	e := newEnvOn(b, st)
	storetest.Fleet(b, st, 1000)
	for _, query := range []string{"?limit=100", "?limit=500", "?q=group%2099&status=active"} {
		b.Run(query, func(b *testing.B) {
			for b.Loop() {
				if code := rawGet(b, e, "/integrations"+query); code != 200 {
					b.Fatal(code)
				}
			}
		})
	}
}

// rawGet requests path with the admin token, reading the whole answer but
// validating nothing: what a client pays.
func rawGet(b *testing.B, e *env, path string) int {
	req, err := http.NewRequest("GET", e.server.URL+"/api/v1"+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
