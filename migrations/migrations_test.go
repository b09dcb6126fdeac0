package migrations_test

import (
	"context"
	"fmt"
	"slices"
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

// Migration 0020 gives the recipients that existed before 0011 their
// effective expiry, over several batches: their own link's, else the
// distribution's, else the survey's end date, else none.
func TestRecipientsOfAnOlderSchemaGetTheirExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDatabase(t)
	if err := migrations.UpTo(dbURL, 9); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const integ = "00000000-0000-4000-8000-000000000001"
	for _, sql := range []string{
		`INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id) VALUES ('` + integ + `', 'One', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k')`,
		`INSERT INTO surveys (integration_id, qualtrics_id, name, end_date) VALUES
		   ('` + integ + `', 'SV_E', 'ends', '2027-01-03T00:00:00Z'), ('` + integ + `', 'SV_N', 'never ends', NULL)`,
		`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, link_expiration) VALUES
		   ('` + integ + `', 'D_L', 'SV_N', '2027-01-02T00:00:00Z'), ('` + integ + `', 'D_E', 'SV_E', NULL), ('` + integ + `', 'D_N', 'SV_N', NULL)`,
		// 12,001 recipients: three batches and a bit, four kinds in turn.
		`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, link_expiration)
		 SELECT '` + integ + `', (ARRAY['D_L', 'D_L', 'D_E', 'D_N'])[n % 4 + 1], 'C' || lpad(n::text, 6, '0'),
		        CASE WHEN n % 4 = 2 THEN 'SV_E' ELSE 'SV_N' END,
		        CASE WHEN n % 4 = 0 THEN '2027-01-01T00:00:00Z'::timestamptz END
		 FROM generate_series(0, 12000) n`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	if err := migrations.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'none'), count(*)
		FROM recipients GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var day string
		var n int
		err := r.Scan(&day, &n)
		return fmt.Sprintf("%s:%d", day, n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	// n%4==0: own link (3,001); 1: the distribution's; 2: the survey's; 3: none.
	if want := []string{"2027-01-01:3001", "2027-01-02:3000", "2027-01-03:3000", "none:3000"}; !slices.Equal(got, want) {
		t.Errorf("expiries %v, want %v", got, want)
	}
}

// Issue 29.10: an index that a failed CREATE INDEX CONCURRENTLY left INVALID
// is rebuilt by the next migrate up (its migration's IF NOT EXISTS would keep
// it invalid forever).
func TestUpRebuildsAnInvalidIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewMigrated(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	valid := func() bool {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'distributions_deleted_idx'::regclass`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// What a build cut short leaves behind (needs a superuser, as the tests' server has).
	if _, err := conn.Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'distributions_deleted_idx'::regclass`); err != nil {
		t.Skipf("cannot mark an index invalid here: %v", err)
	}
	if valid() {
		t.Fatal("the index is still valid")
	}
	if err := migrations.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	if !valid() {
		t.Error("migrate up left the invalid index invalid")
	}
}
