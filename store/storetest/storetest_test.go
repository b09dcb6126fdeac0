package storetest_test

import (
	"context"
	"testing"

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
