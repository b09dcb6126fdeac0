package console

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store/storetest"
)

// The health page puts what needs someone first (a refused credential, a
// failed last sync, a sync out of date), shows the outbox's oldest notice,
// River's queues and the brands' slowed budgets, in both languages, in a
// constant number of round trips.
func TestHealthShowsWhatNeedsSomeoneFirst(t *testing.T) {
	t.Parallel()
	st, rt := storetest.Traced(t)
	storetest.Fleet(t, st, 120) // every third paused, every fifth otherwise in error
	h := (&fixture{store: st}).consoleServer(t)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// Group 1 failed its last sync; Group 2 is out of date; the others synced just now.
		{`UPDATE integrations SET last_success_at = $1, last_sync_at = $1`, []any{testNow}},
		{`UPDATE integrations SET last_success_at = $1, last_sync_at = $2 WHERE name = 'Group 1'`, []any{testNow.Add(-time.Hour), testNow}},
		{`UPDATE integrations SET last_success_at = $1, last_sync_at = $1 WHERE name = 'Group 2'`, []any{testNow.Add(-3 * time.Hour)}},
		{`INSERT INTO rate_buckets (brand_key, endpoint, tokens, factor, factor_at, throttled) VALUES ('acme', '*', 0, 0.5, $1, 2)`, []any{testNow}},
	} {
		if _, err := st.Pool().Exec(t.Context(), q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	var rec *httptest.ResponseRecorder
	if n := rt.During(func() { rec = get(t, h, platformAdmin, "/console/health") }); n > 3 {
		t.Errorf("%d round trips, want at most 3", n)
	}
	if rec.Code != 200 {
		t.Fatalf("GET /console/health = %d", rec.Code)
	}
	doc := parse(t, rec)
	rows := doc.Find(`[data-testid="health-integration"]`)
	if rows.Length() != healthPageSize {
		t.Fatalf("%d rows, want a page of %d", rows.Length(), healthPageSize)
	}
	healths := attrs(rows, "data-health")
	// The 16 in error (multiples of 5 but not of 3, which are paused) come
	// first, then Group 1 (failed), then Group 2 (stale), then the paused ones.
	if healths[0] != "error" || healths[15] != "error" || healths[16] != "failing" || healths[17] != "stale" || healths[18] != "paused" {
		t.Errorf("order: %v", healths[:20])
	}
	names := texts(rows.Find("th a"))
	if names[16] != "Group 1" || names[17] != "Group 2" {
		t.Errorf("failing then stale: %v", names[15:19])
	}
	if budgets := doc.Find(`[data-testid="health-budgets"]`).Text(); !strings.Contains(budgets, "acme") || !strings.Contains(budgets, "50%") {
		t.Errorf("budgets: %q", budgets)
	}
	if doc.Find(`[data-testid="health-outbox"] tr`).Length() != 3 {
		t.Error("the outbox table has no row per channel")
	}
	if replica := doc.Find(`[data-testid="health-replica"]`).Text(); !strings.Contains(replica, "None configured") {
		t.Errorf("replica: %q", replica)
	}
	if !strings.Contains(doc.Find(".notice").Text(), "need someone") {
		t.Errorf("no count of what needs someone: %q", doc.Find(".notice").Text())
	}
	fr := parse(t, get(t, h, platformAdmin, "/console/health", "Accept-Language", "fr"))
	if title := fr.Find("h1").Text(); title != "État du service" {
		t.Errorf("French title %q", title)
	}
	if got := get(t, h, "nobody@example.com", "/console/health"); got.Code != 404 {
		t.Errorf("a non-admin: %d", got.Code)
	}
}
