package api_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// roundTrips counts what a pool sends to PostgreSQL: each query, each batch
// (once, however many statements it holds) and each COPY.
type roundTrips struct{ queries, batches atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (c *roundTrips) count(fn func()) int64 {
	before := c.queries.Load() + c.batches.Load()
	fn()
	return c.queries.Load() + c.batches.Load() - before
}

// tracedStore is a store on a fresh database whose every round trip the
// returned counter sees.
func tracedStore(t *testing.T) (*store.Store, *roundTrips) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(storetest.NewMigrated(t))
	if err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool), rt
}

// fleet inserts n integrations named "Group <i>" (every third paused, every
// fifth in error), each with three sync runs, in creation order.
func fleet(t *testing.T, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		fmt.Sprintf(`INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, status, created_at)
		SELECT gen_random_uuid(), 'Group ' || g, CASE WHEN g %% 2 = 0 THEN 'Sales' ELSE 'Customer Success' END,
		       'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1',
		       CASE WHEN g %% 3 = 0 THEN 'paused' WHEN g %% 5 = 0 THEN 'error' ELSE 'active' END,
		       now() - make_interval(secs => %d - g)
		FROM generate_series(1, %d) g`, n, n),
		`INSERT INTO sync_runs (integration_id, kind, trigger, status, queued_at)
		SELECT i.id, 'full', 'schedule', 'succeeded', now() - make_interval(mins => r)
		FROM integrations i, generate_series(1, 3) r`,
		`ANALYZE integrations, sync_runs`,
	} {
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIntegrationsAreListedAPageAtATime(t *testing.T) {
	t.Parallel()
	st, _ := tracedStore(t)
	e := newEnvOn(t, st)
	fleet(t, st, 7)

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
	st, rt := tracedStore(t)
	e := newEnvOn(t, st)
	fleet(t, st, 1000)

	for _, query := range []string{"", "?limit=500", "?limit=500&status=active", "?q=group%2099"} {
		path := "/integrations" + query
		var r response
		n := rt.count(func() { r = e.do("GET", path, nil) })
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		if n > 2 {
			t.Errorf("GET %s: %d round trips to PostgreSQL, want at most 2", path, n)
		}
	}
}
