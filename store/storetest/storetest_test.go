package storetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps/store/storetest"
)

func TestDatabasesAreSeparateAndMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := storetest.New(t)
	b := storetest.New(t)

	if _, err := a.Pool().Exec(ctx, `INSERT INTO audit_events (actor, action) VALUES ('test', 'a-only')`); err != nil {
		t.Fatalf("insert into a migrated clone: %v", err)
	}
	var n int
	if err := b.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d rows of the first", n)
	}
}

func TestTxIsRolledBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	t.Run("writes inside the transaction", func(t *testing.T) {
		tx := storetest.Tx(t, s)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_events (actor, action) VALUES ('test', 'x')`); err != nil {
			t.Fatal(err)
		}
	})
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("rolled-back insert is visible: %d rows", n)
	}
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		s := storetest.New(t)
		if err := s.Pool().QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	admin := storetest.New(t)
	var exists bool
	if err := admin.Pool().QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

// The scale data holds exactly the rows asked for, whatever the remainders,
// with the large integration's share, each person once per distribution.
func TestLoadScaleWritesExactlyTheRowsAskedFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	sp := storetest.ScaleSpec{Recipients: 4003, Integrations: 4, LargeShare: 0.5, PerUser: 5, PerSurvey: 300, Seed: 1}
	if err := storetest.LoadScale(ctx, s, sp, time.Now()); err != nil {
		t.Fatal(err)
	}
	var total, large, doubles int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE integration_id = $1),
		(SELECT count(*) FROM (SELECT 1 FROM recipients GROUP BY integration_id, distribution_id, email HAVING count(*) > 1) d)
		FROM recipients`, storetest.ScaleIntegrationID(0)).Scan(&total, &large, &doubles); err != nil {
		t.Fatal(err)
	}
	if total != 4003 || large != 2001 || doubles != 0 {
		t.Errorf("%d rows (want 4003), %d in the large integration (want 2001), %d people twice in a distribution", total, large, doubles)
	}
}
