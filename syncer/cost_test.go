package syncer_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
	"github.com/microapps/microapps/syncer"
)

// tableReads are a table's cumulative reads from pg_stat_user_tables.
type tableReads struct{ seqScans, rows, written int64 }

// readsOf returns each table's reads and writes so far in the database at
// dbURL, once every other backend of it has ended: a backend reports its
// statistics when it exits, so a pool closed before this call has counted
// everything it did.
func readsOf(t *testing.T, dbURL string, tables ...string) map[string]tableReads {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var others int
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other backends still connected", others)
		}
	}
	out := map[string]tableReads{}
	rows, err := st.Pool().Query(ctx, `SELECT relname, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0),
		n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = ANY($1)`, tables)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var r tableReads
		if err := rows.Scan(&name, &r.seqScans, &r.rows, &r.written); err != nil {
			t.Fatal(err)
		}
		out[name] = r
	}
	return out
}

// Issue 30: an incremental of a brand where nothing changed costs what
// changed (nothing), not what the brand holds. Measured from the database's
// own counters over the whole run (every statement of the sync, the merge
// and the rules), on a brand whose every recipient has a link expiration of
// its own, analysed: the run reads no recipient, notification or delivery by
// a sequential scan, and at most a few recipient rows per row it writes.
func TestAnUnchangedIncrementalReadsWhatChangedNotTheBrand(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 12,000 recipients")
	}
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewMigrated(t)
	open := func() *store.Store {
		st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := open()
	e := newEnv(t, envOptions{seed: 30, spec: qualtricssim.Spec{Surveys: 12, Recipients: 12_000}, store: first})
	start := time.Now()
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	t.Logf("full sync: %v", time.Since(start))
	var recipients, own int64
	if err := first.Pool().QueryRow(ctx, `SELECT count(*), count(link_expiration) FROM recipients`).Scan(&recipients, &own); err != nil {
		t.Fatal(err)
	}
	if own < recipients*9/10 {
		t.Fatalf("%d of %d recipients have a link expiration of their own: not the shape this test is about", own, recipients)
	}
	if _, err := first.Pool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	first.Close()

	tables := []string{"recipients", "notifications", "deliveries", "distributions", "surveys"}
	before := readsOf(t, dbURL, tables...)
	st := open()
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: e.keyring, AllowedHosts: []string{"127.0.0.1"},
		Notifier: e.notifier, ClientConfig: fastClient, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	run := e.queue(microapps.SyncIncremental)
	out, err := sy.RunNow(ctx, e.in.ID, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.mustSucceed(out)
	st.Close()
	after := readsOf(t, dbURL, tables...)

	var written int64
	for _, tb := range tables {
		written += after[tb].written - before[tb].written
	}
	// The counters work: the run reads the distributions it lists.
	if d := after["distributions"].rows - before["distributions"].rows; d == 0 {
		t.Fatal("no distribution read counted: the statistics were not collected")
	} else {
		t.Logf("distributions: %d rows read", d)
	}
	for _, tb := range []string{"recipients", "notifications", "deliveries"} {
		seq, read := after[tb].seqScans-before[tb].seqScans, after[tb].rows-before[tb].rows
		t.Logf("%s: %d sequential scans, %d rows read (%d recipients in the brand; the run wrote %d rows)", tb, seq, read, recipients, written)
		if seq != 0 {
			t.Errorf("%s: %d sequential scans during an unchanged incremental", tb, seq)
		}
		if read > 4*written+100 {
			t.Errorf("%s: %d rows read against %d written: the run's cost follows the brand, not the change", tb, read, written)
		}
	}
}
