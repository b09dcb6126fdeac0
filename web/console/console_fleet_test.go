package console

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microapps/microapps/store/storetest"
)

// The console's list finds integrations by name or group and status, a page
// at a time, in name order.
func TestConsoleListSearchesFiltersAndPages(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Traced(t)
	storetest.Fleet(t, st, 120)
	h := (&fixture{store: st}).consoleServer(t)

	names := func(path string) []string {
		t.Helper()
		rec := get(t, h, platformAdmin, path)
		if rec.Code != 200 {
			t.Fatalf("GET %s = %d", path, rec.Code)
		}
		return texts(parse(t, rec).Find(`[data-testid="integration-row"] th a`))
	}
	first := names("/console")
	if len(first) != consolePageSize || first[0] != "Group 1" || first[1] != "Group 10" {
		t.Fatalf("first page: %d rows, starting %v", len(first), first[:min(3, len(first))])
	}
	third := names("/console?page=3")
	if len(third) != 120-2*consolePageSize {
		t.Fatalf("third page: %d rows", len(third))
	}
	if got := names("/console?q=GROUP%2011"); fmt.Sprint(got) != "[Group 11 Group 110 Group 111 Group 112 Group 113 Group 114 Group 115 Group 116 Group 117 Group 118 Group 119]" {
		t.Errorf("search: %v", got)
	}
	paused := names("/console?status=paused")
	if len(paused) != 40 {
		t.Errorf("status=paused: %d rows, want 40", len(paused))
	}
	if got := names("/console?status=error&q=sales"); len(got) != 8 { // 10, 20, … 110 but not 30, 60, 90 (paused)
		t.Errorf("status=error&q=sales: %v", got)
	}
	rec := get(t, h, platformAdmin, "/console?q=nothing-like-it")
	if empty := parse(t, rec).Find(`[data-testid="empty-state"]`).Text(); !strings.Contains(empty, "No integration matches") {
		t.Errorf("no match says %q", empty)
	}
	// A filter survives paging.
	doc := parse(t, get(t, h, platformAdmin, "/console?q=group"))
	if next, _ := doc.Find(`a[rel="next"]`).Attr("href"); !strings.Contains(next, "q=group") {
		t.Errorf("next page link %q drops the search", next)
	}
}

// Whatever the fleet, the console's list and an integration's page each
// cost at most three round trips to PostgreSQL.
func TestConsoleReadsInThreeRoundTripsAtAThousandIntegrations(t *testing.T) {
	t.Parallel()
	st, rt := storetest.Traced(t)
	storetest.Fleet(t, st, 1000)
	h := (&fixture{store: st}).consoleServer(t)
	var id string
	if err := st.Pool().QueryRow(t.Context(), `SELECT id::text FROM integrations ORDER BY created_at DESC LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console", "/console?page=20", "/console?status=active&q=group", "/console/integrations/" + id} {
		var rec *httptest.ResponseRecorder
		n := rt.During(func() { rec = get(t, h, platformAdmin, path) })
		if rec.Code != 200 {
			t.Fatalf("GET %s = %d", path, rec.Code)
		}
		if n > 3 {
			t.Errorf("GET %s: %d round trips to PostgreSQL, want at most 3", path, n)
		}
		t.Logf("GET %s: %d round trips", path, n)
	}
}

// BenchmarkConsoleReads renders the console's list and an integration's page
// in a fleet of 1,000 integrations.
func BenchmarkConsoleReads(b *testing.B) {
	st := storetest.New(b)
	storetest.Fleet(b, st, 1000)
	h := (&fixture{store: st}).consoleServer(b)
	var id string
	if err := st.Pool().QueryRow(b.Context(), `SELECT id::text FROM integrations ORDER BY created_at DESC LIMIT 1`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, path string }{{"list", "/console"}, {"list-page-20", "/console?page=20"},
		{"search", "/console?status=active&q=group"}, {"integration", "/console/integrations/" + id}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if rec := get(b, h, platformAdmin, c.path); rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
