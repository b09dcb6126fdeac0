package web

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// fakeRouter is a ReadRouter whose answers the test sets, and which records
// what the pages asked.
type fakeRouter struct {
	mu       sync.Mutex
	replayed store.LSN // the replica has replayed this far
	down     bool
	afters   []store.LSN
	failed   []error
	position store.LSN // WritePosition's answer
	onWrite  func()    // called by WritePosition, to see what is committed by then
}

func (f *fakeRouter) UseStandby(after store.LSN) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afters = append(f.afters, after)
	return !f.down && f.replayed >= after
}

func (f *fakeRouter) ReadFailed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, err)
}

func (f *fakeRouter) WritePosition(context.Context) (store.LSN, error) {
	if f.onWrite != nil {
		f.onWrite()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.position, nil
}

func (f *fakeRouter) lastAfter() store.LSN {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.afters) == 0 {
		return 0
	}
	return f.afters[len(f.afters)-1]
}

// TestReadReplicaRouting serves the pages on two databases, a "primary" and
// a "replica" whose notification is already read, so each page shows which
// one it read: the pages read the replica when the router allows, a write
// leaves its WAL position in a cookie, the next page passes it to the router
// and reads the primary until the replica has replayed it, and a replica
// that fails or lacks a row is read again from the primary.
func TestReadReplicaRouting(t *testing.T) {
	t.Parallel()
	primary := newFixture(t).store
	replica := newFixture(t).store
	ctx := context.Background()
	exec(t, replica, `UPDATE notifications SET read_at = $1`, testNow.Add(-time.Minute))
	// A distribution only the primary has, as after a sync the replica has not replayed.
	exec(t, primary, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, send_date, created_date)
	    VALUES ($1, 'EMD_NEW', 'SV_1', 'Invite', $2, $2)`, intA, testNow.Add(-time.Hour))
	exec(t, primary, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, sent_at, respond_link)
	    VALUES ($1, 'EMD_NEW', 'CID_a1', 'SV_1', 'alice@example.com', 'Success', $2, 'https://iad1.qualtrics.com/new')`, intA, testNow.Add(-time.Hour))

	router := &fakeRouter{replayed: 100, position: 200}
	srv, err := New(Options{Store: primary, ReadStore: replica, Reads: router, AuthMode: AuthHeader,
		AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	countUnread := func(body string) int { return strings.Count(body, `data-unread="true"`) }

	// 1. No write yet: the replica's version.
	rec := get(t, h, "alice@example.com", "/notifications")
	if rec.Code != http.StatusOK || countUnread(rec.Body.String()) != 0 {
		t.Fatalf("first feed: %d, %d unread; want the replica's (all read)", rec.Code, countUnread(rec.Body.String()))
	}
	if router.lastAfter() != 0 {
		t.Errorf("after = %v with no write", router.lastAfter())
	}

	// 2. A write: marked on the primary, before the cookie's position is read.
	exec(t, primary, `UPDATE notifications SET read_at = NULL`)
	exec(t, replica, `UPDATE notifications SET read_at = NULL`)
	var committed bool
	router.onWrite = func() {
		var n int
		_ = primary.Pool().QueryRow(ctx, `SELECT count(*) FROM notifications
		    WHERE email = 'alice@example.com' AND read_at IS NULL AND expires_at > $1`, testNow).Scan(&n)
		committed = n == 0
	}
	rec = post(t, h, "alice@example.com", "/notifications/read", url.Values{"id": {"all"}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("mark read: %d", rec.Code)
	}
	if !committed {
		t.Error("the write position was read before the write was committed")
	}
	var wrote *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == wroteCookie {
			wrote = c
		}
	}
	if wrote == nil || wrote.Value != store.LSN(200).String() || wrote.MaxAge != wroteCookieAge || !wrote.HttpOnly {
		t.Fatalf("write cookie = %+v, want %s for %d s", wrote, store.LSN(200), wroteCookieAge)
	}

	// 3. The redirect, with the cookie: the replica (replayed 100 < 200)
	// still shows them unread, so the page reads the primary.
	rec = get(t, h, "alice@example.com", "/notifications", "Cookie", wrote.Name+"="+wrote.Value)
	if router.lastAfter() != 200 {
		t.Errorf("after = %v, want the cookie's 200", router.lastAfter())
	}
	if n := countUnread(rec.Body.String()); rec.Code != http.StatusOK || n != 0 {
		t.Fatalf("feed after the write: %d, %d unread; want the primary's (all read)", rec.Code, n)
	}
	// Without the cookie (another browser of someone else) the replica's is fine.
	if n := countUnread(get(t, h, "alice@example.com", "/notifications").Body.String()); n == 0 {
		t.Error("without the cookie the page did not read the replica")
	}
	// Once the replica has replayed the write, it serves that browser again.
	router.mu.Lock()
	router.replayed = 250
	router.mu.Unlock()
	rec = get(t, h, "alice@example.com", "/notifications", "Cookie", wrote.Name+"="+wrote.Value)
	if n := countUnread(rec.Body.String()); n == 0 {
		t.Error("with the write replayed, the page did not read the replica")
	}
	// A forged cookie only sends that browser to the primary.
	rec = get(t, h, "alice@example.com", "/notifications", "Cookie", wrote.Name+"=garbage")
	if rec.Code != http.StatusOK || router.lastAfter() != allWrites || countUnread(rec.Body.String()) != 0 {
		t.Errorf("forged cookie: %d, after %v", rec.Code, router.lastAfter())
	}

	// 4. A row the replica has not replayed: read again from the primary, not a 404.
	rec = get(t, h, "alice@example.com", surveyDetailsPath(intA, "EMD_NEW"))
	if rec.Code != http.StatusOK {
		t.Fatalf("details of a distribution only the primary has: %d", rec.Code)
	}
	router.mu.Lock()
	if len(router.failed) != 1 || !errors.Is(router.failed[0], store.ErrNotFound) {
		t.Errorf("failed = %v, want one not-found", router.failed)
	}
	router.mu.Unlock()
	// A hidden item is still a 404, from both.
	if rec := get(t, h, "alice@example.com", surveyDetailsPath(intC, "EMD_C1")); rec.Code != http.StatusNotFound {
		t.Errorf("another user's distribution: %d", rec.Code)
	}

	// 5. /api/v1/me reads the replica too.
	exec(t, replica, `UPDATE notifications SET read_at = $1`, testNow.Add(-time.Minute))
	rec = get(t, srv.MeAPI(), "alice@example.com", "/api/v1/me/notifications")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"read":false`) {
		t.Errorf("me API: %d %s; want the replica's (all read)", rec.Code, rec.Body)
	}

	// 6. A replica that fails: the page comes from the primary.
	broken, err := store.OpenStandby(ctx, storetest.NewMigrated(t), store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	router2 := &fakeRouter{replayed: 1 << 40}
	srv2, err := New(Options{Store: primary, ReadStore: broken, Reads: router2, AuthMode: AuthHeader,
		AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/notifications", "/settings/notifications", "/api/v1/me/surveys"} {
		h := srv2.Handler()
		if strings.HasPrefix(path, "/api/") {
			h = srv2.MeAPI()
		}
		if rec := get(t, h, "alice@example.com", path); rec.Code != http.StatusOK {
			t.Errorf("%s with the replica down: %d", path, rec.Code)
		}
	}
	router2.mu.Lock()
	if len(router2.failed) != 4 {
		t.Errorf("failed reads reported: %v, want 4", router2.failed)
	}
	router2.mu.Unlock()

	// Without a replica nothing changes: no cookie on writes.
	plain, err := New(Options{Store: primary, AuthMode: AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	rec = post(t, plain.Handler(), "alice@example.com", "/notifications/read", url.Values{"id": {"all"}})
	if rec.Code != http.StatusSeeOther || len(rec.Result().Cookies()) != 0 {
		t.Errorf("without a replica: %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
	if _, err := New(Options{Store: primary, ReadStore: replica, AuthMode: AuthHeader, AuthHeader: "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{testProxy}}); err == nil {
		t.Error("a ReadStore without Reads was accepted")
	}
}

// Issue 31, item 2: a NUL byte or invalid UTF-8 in a page's path, query or
// form answered 500 (SQLSTATE 22021) and, with a read replica, turned the
// replica off for everyone. One middleware now answers 400 before any
// handler: nothing reaches the database, and the router hears of no failure.
func TestNULAndInvalidUTF8InParametersAre400AndSpareTheReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	router := &fakeRouter{replayed: 100}
	srv, err := New(Options{Store: f.store, ReadStore: f.store, Reads: router, AuthMode: AuthHeader,
		AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{testProxy}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for _, target := range []string{
		"/surveys/" + intA + "/%00", "/surveys/" + intA + "/EMD_%ff", "/admin/surveys?q=%00", "/admin/surveys?q=%ff",
		"/admin/surveys/" + intA + "/SV_%00", "/admin/surveys/" + intA + "/SV_1?distribution=%00",
		"/admin/surveys/" + intA + "/SV_1?after=%00%0A%00", "/admin/distributions/" + intA + "/EMD_%00",
		"/admin/surveys?%00=x", "/notifications?page=%C0%AF",
	} {
		rec := get(t, h, "admin@example.com", target)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Address not understood") {
			t.Errorf("GET %s: %d, want the 400 page", target, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "%00") || strings.Contains(rec.Body.String(), "%ff") {
			t.Errorf("GET %s: the 400 page carries the bytes back", target)
		}
	}
	rec := post(t, h, "alice@example.com", "/settings/notifications", url.Values{"timeZone": {"Europe/Paris\x00"}})
	if rec.Code != http.StatusBadRequest {
		t.Errorf("POST a form with a NUL: %d, want 400", rec.Code)
	}
	rec = get(t, srv.MeAPI(), "alice@example.com", "/api/v1/me/surveys?x=%00")
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("/api/v1/me with a NUL: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	router.mu.Lock()
	failed := router.failed
	router.mu.Unlock()
	if len(failed) != 0 {
		t.Errorf("the router was told of %d failed reads: %v", len(failed), failed)
	}
	// Clean text still gets its page, read from the replica.
	if rec := get(t, h, "admin@example.com", "/admin/surveys?q=caf%C3%A9"); rec.Code != http.StatusOK {
		t.Errorf("a UTF-8 query: %d", rec.Code)
	}
}
