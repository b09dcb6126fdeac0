package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/store/storetest"
)

func TestUpDownUpLeavesACurrentSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDatabase(t)

	st, err := migrations.Version(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 0 || st.River != 0 || st.Current() {
		t.Fatalf("empty database reported %v", st)
	}

	for i, step := range []struct {
		name string
		fn   func(context.Context, string) error
		want bool
	}{
		{"up", migrations.Up, true},
		{"down", migrations.Down, false},
		{"up again", migrations.Up, true},
		{"up when current", migrations.Up, true},
	} {
		if err := step.fn(ctx, dbURL); err != nil {
			t.Fatalf("step %d (%s): %v", i, step.name, err)
		}
		st, err := migrations.Version(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		if st.Current() != step.want {
			t.Fatalf("after %s: %v, want current=%v", step.name, st, step.want)
		}
		if !step.want && (st.Version != 0 || st.River != 0) {
			t.Fatalf("after %s the schema is not empty: %v", step.name, st)
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"integrations", "brand_admins", "surveys", "distributions", "distribution_stats",
		"recipients", "sync_runs", "request_logs", "notifications", "deliveries", "audit_events", "river_job"} {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing after up (err %v)", table, err)
		}
	}
}

func TestDownRemovesEveryTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewMigrated(t)
	if err := migrations.Down(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables []string
	rows, _ := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`)
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 0 {
		t.Fatalf("tables left after down: %v", tables)
	}
}

func TestFingerprintIsStable(t *testing.T) {
	t.Parallel()
	a, err := migrations.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := migrations.Fingerprint()
	if a != b || len(a) != 16 {
		t.Fatalf("fingerprint %q then %q", a, b)
	}
}
