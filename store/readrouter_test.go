package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func TestLSNRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := store.ParseLSN(s)
		if err != nil || l.String() != s {
			t.Errorf("ParseLSN(%q) = %v (%v), String %q", s, uint64(l), err, l.String())
		}
	}
	if l, _ := store.ParseLSN("1/0"); l != 1<<32 {
		t.Errorf("1/0 = %d", uint64(l))
	}
	for _, bad := range []string{"", "0", "/1", "1/", "x/1", "1/2/3", "100000000/0", "-1/0", " 0/1"} {
		if _, err := store.ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

// TestReadRouterRefusesAServerThatIsNoStandby points the router's "replica"
// at the primary itself (a read URL set to the primary's database, or a
// standby that was promoted): it is never read, and the reason says so.
func TestReadRouterRefusesAServerThatIsNoStandby(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	primary := storetest.New(t)
	pos, err := primary.WALPosition(ctx)
	if err != nil || pos == 0 {
		t.Fatalf("WALPosition = %v, %v", pos, err)
	}
	if _, standby, err := primary.ReplayPosition(ctx); err != nil || standby {
		t.Fatalf("ReplayPosition on a primary: standby %v, %v", standby, err)
	}
	var changes []string
	var reads []string
	r := store.NewReadRouter(primary, primary, store.ReadRouterOptions{CheckEvery: time.Hour,
		OnRead: func(target string) { reads = append(reads, target) },
		OnChange: func(usable bool, why error) {
			if !usable {
				changes = append(changes, why.Error())
			}
		}})
	defer r.Close()
	r.Check(ctx)
	if st := r.Status(); st.OK || st.Err == nil || !strings.Contains(st.Err.Error(), "not a standby") {
		t.Errorf("status = %+v, want not OK: not a standby", st)
	}
	if r.UseStandby(0) {
		t.Error("a primary is used as the read replica")
	}
	r.Check(ctx)
	if len(changes) != 1 {
		t.Errorf("OnChange reported %d times (%q), want once", len(changes), changes)
	}
	if len(reads) != 1 || reads[0] != store.ReadPrimary {
		t.Errorf("reads counted %v", reads)
	}
	if got, err := r.WritePosition(ctx); err != nil || got < pos {
		t.Errorf("WritePosition = %v, %v; want at least %v", got, err, pos)
	}
}

// TestOpenStandbyDoesNotWaitForTheServer: the service starts while its
// optional read replica is down, and the URL's password never shows in an
// error.
func TestOpenStandbyDoesNotWaitForTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := store.OpenStandby(ctx, "postgres://u:secret-pw@127.0.0.1:1/db?sslmode=disable", store.Options{})
	if err != nil {
		t.Fatalf("OpenStandby on a closed port: %v", err)
	}
	defer s.Close()
	start := time.Now()
	_, _, err = s.ReplayPosition(ctx)
	if err == nil || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("ReplayPosition on a closed port: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a refused connection took %v", time.Since(start))
	}
	if _, err := store.OpenStandby(ctx, "postgres://u:secret-pw@[::1", store.Options{}); err == nil || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("bad URL: %v", err)
	}
}

// Issue 31, item 2: a NUL byte in a page parameter made the standby answer
// SQLSTATE 22021, and ReadFailed then turned the standby off for everyone.
// An error of class 22 (the request's own data) leaves it in use; a real
// fault still stops it.
func TestAClientDataErrorDoesNotTurnTheStandbyOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	_, nulErr := st.Pool().Exec(ctx, `SELECT $1::text`, "a\x00b")
	_, utf8Err := st.Pool().Exec(ctx, `SELECT $1::text`, "a\xffb")
	if nulErr == nil || utf8Err == nil {
		t.Fatalf("PostgreSQL accepted a NUL byte (%v) or invalid UTF-8 (%v) in text", nulErr, utf8Err)
	}
	r := store.NewReadRouterInUse(st, st, time.Now())
	for _, e := range []error{nulErr, utf8Err, fmt.Errorf("store: open surveys: %w", nulErr)} {
		r.ReadFailed(e)
		if !r.Status().OK || !r.UseStandby(0) {
			t.Fatalf("ReadFailed(%v) turned the standby off: %+v", e, r.Status())
		}
	}
	if store.CheckAsked(r) {
		t.Error("a client's data error asked for a new check")
	}
	r.ReadFailed(fmt.Errorf("store: feed: %w", errors.New("read tcp: connection reset by peer")))
	if r.Status().OK || r.UseStandby(0) {
		t.Error("a connection failure left the standby in use")
	}
}
