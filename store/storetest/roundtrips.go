package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// RoundTrips counts what a pool sends to PostgreSQL: each query and each
// batch (once, however many statements it holds).
type RoundTrips struct{ queries, batches atomic.Int64 }

func (c *RoundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *RoundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *RoundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *RoundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *RoundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// During returns the round trips fn made (fn alone must use the pool meanwhile).
func (c *RoundTrips) During(fn func()) int64 {
	before := c.queries.Load() + c.batches.Load()
	fn()
	return c.queries.Load() + c.batches.Load() - before
}

// Traced is New with every round trip of the store's pool counted.
func Traced(t testing.TB) (*store.Store, *RoundTrips) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(NewMigrated(t))
	if err != nil {
		t.Fatal(err)
	}
	rt := &RoundTrips{}
	cfg.ConnConfig.Tracer = rt
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool), rt
}

// Fleet inserts n integrations named "Group <i>", created in that order
// (functional group Sales for even i, else Customer Success; every third
// paused, else every fifth in error), each with three finished sync runs, a
// Brand Admin and an audit event, and analyses them.
func Fleet(t testing.TB, st *store.Store, n int) {
	t.Helper()
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
		`INSERT INTO brand_admins (integration_id, email) SELECT id, 'admin@example.com' FROM integrations`,
		`INSERT INTO audit_events (actor, action, integration_id, details) SELECT 'test', 'integration.create', id, '{}' FROM integrations`,
		`ANALYZE integrations, sync_runs, brand_admins, audit_events`,
	} {
		if _, err := st.Pool().Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
}

// QueuedSyncs queues sync runs in the store as the syncer does, without
// River: what the admin services need of sync control in tests.
type QueuedSyncs struct{ Store *store.Store }

// Trigger queues a run unless one is queued or running, which it returns.
func (q QueuedSyncs) Trigger(ctx context.Context, id string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (run store.SyncRun, created bool, err error) {
	err = q.Store.WithTx(ctx, func(tx pgx.Tx) error {
		run, created, err = q.Store.QueueSyncRunTx(ctx, tx, id, kind, trigger)
		return err
	})
	return run, created, err
}

// CancelJobs cancels nothing: there are no jobs.
func (QueuedSyncs) CancelJobs(context.Context, []int64) error { return nil }
