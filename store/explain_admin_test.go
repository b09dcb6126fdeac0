package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// The admin reads (the integration list's newest runs, the audit trail, the
// health page) read the tables that grow with time through their indexes:
// sync runs, audit events and River's finished jobs accumulate, and an admin
// page must cost what it shows. On analysed statistics and on statistics
// from before the data.
func TestAdminReadsUseIndexes(t *testing.T) {
	t.Parallel()
	for _, stale := range []bool{false, true} {
		name := "analysed"
		if stale {
			name = "statistics from before the data"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.New(t)
			if stale {
				mustExec(t, s, `ANALYZE`)
			}
			storetest.Fleet(t, s, 1000)
			for _, sql := range []string{
				`INSERT INTO sync_runs (integration_id, kind, trigger, status, queued_at)
				 SELECT i.id, 'incremental', 'schedule', 'succeeded', now() - make_interval(mins => 15 * r)
				 FROM integrations i, generate_series(1, 30) r`,
				`INSERT INTO audit_events (actor, action, integration_id, details)
				 SELECT 'test', 'integration.update', i.id, '{}' FROM integrations i, generate_series(1, 20)`,
				`INSERT INTO river_job (args, kind, max_attempts, state, queue, finalized_at)
				 SELECT '{}', 'sync', 25, 'completed', 'sync', now() FROM generate_series(1, 50000)`,
				`INSERT INTO river_job (args, kind, max_attempts, state, queue)
				 SELECT '{}', 'deliver', 25, 'available', 'default' FROM generate_series(1, 20)`,
				`INSERT INTO rate_buckets (brand_key, endpoint, tokens, factor) SELECT 'brand' || g, '*', 10, 1 FROM generate_series(1, 500) g`,
			} {
				mustExec(t, s, sql)
			}
			if !stale {
				mustExec(t, s, `ANALYZE`)
			}
			var ids []string
			rows, err := s.Pool().Query(ctx, `SELECT id::text FROM integrations ORDER BY created_at LIMIT 100`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				_ = rows.Scan(&id)
				ids = append(ids, id)
			}
			rows.Close()
			now := time.Now()
			for _, q := range []struct {
				name string
				sql  string
				args []any
			}{
				{"a page's newest runs", store.NewestRunsSQL, []any{ids}},
				{"an integration's runs", store.SyncRunsSQL, []any{ids[0], 10}},
				{"the audit trail", store.AuditSQL, []any{int64(1) << 62, 51}},
				{"an integration's audit trail", store.IntegrationAuditSQL, []any{int64(1) << 62, 21, ids[0]}},
				{"health: River's jobs still to run", store.HealthJobsSQL, nil},
				{"health: budgets a 429 lowered", store.HealthBudgetsSQL, []any{now}},
			} {
				var plan []byte
				if err := s.Pool().QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q.sql, q.args...).Scan(&plan); err != nil {
					t.Fatalf("%s: %v", q.name, err)
				}
				if bad := seqScans(t, plan, "sync_runs", "audit_events", "river_job"); len(bad) > 0 {
					var text strings.Builder
					rows, _ := s.Pool().Query(ctx, `EXPLAIN `+q.sql, q.args...)
					for rows.Next() {
						var line string
						_ = rows.Scan(&line)
						text.WriteString(line + "\n")
					}
					rows.Close()
					t.Errorf("%s: sequential scan of %v:\n%s", q.name, bad, text.String())
				}
			}
		})
	}
}
