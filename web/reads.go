package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

// ReadRouter decides where the pages and /api/v1/me read when a read replica
// is configured (Options.ReadStore); *store.ReadRouter is one, and its
// comment gives the rules.
type ReadRouter interface {
	// UseStandby says whether a request may read from the replica, given
	// the primary's WAL position after its user's last write (zero: none).
	UseStandby(after store.LSN) bool
	// ReadFailed says a read on the replica failed or found nothing, and
	// that the request reads again from the primary.
	ReadFailed(err error)
	// WritePosition is the primary's WAL position, asked after a write.
	WritePosition(ctx context.Context) (store.LSN, error)
}

// wroteCookie carries the primary's WAL position after the browser's last
// write (marking notifications read, saving settings, any form of the
// pages or the console), so the pages that follow, the redirect first, read
// from the replica only once it has replayed that write. A cookie rather
// than a note in this process: the next request may reach another replica
// of the service. It is not signed: a forged value only sends that
// browser's own reads to the primary (a large one) or lets it see its own
// data a moment stale (a small one), which it could do anyway. It lives a
// minute, far longer than the replica may lag (store.ReadRouterOptions'
// MaxLag, 5 s) before it is not read at all, so once it is gone the lag
// bound alone keeps the user's write visible.
const (
	wroteCookie    = "microapps_wrote"
	wroteCookieAge = 60 // seconds
)

// allWrites is the position marked when the primary's could not be read:
// no replica reaches it, so the browser reads from the primary until the
// cookie expires.
const allWrites = store.LSN(1<<64 - 1)

// reader returns the store a request reads from: the replica when one is
// configured, the request only reads (GET or HEAD) and the router allows
// it; the primary otherwise.
func (s *Server) reader(r *http.Request) (Store, bool) {
	if s.opts.ReadStore == nil || s.opts.Reads == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return s.opts.Store, false
	}
	var after store.LSN
	if c, err := r.Cookie(s.cookieName(wroteCookie)); err == nil {
		if pos, err := store.ParseLSN(c.Value); err == nil {
			after = pos
		} else {
			after = allWrites
		}
	}
	if s.opts.Reads.UseStandby(after) {
		return s.opts.ReadStore, true
	}
	return s.opts.Store, false
}

// readAgain tells the router that a read on the replica failed (or found
// nothing, which a replica a moment behind may) before the request is read
// again from the primary.
func (s *Server) readAgain(err error) {
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	s.opts.Reads.ReadFailed(err)
}

// markWrites sets wroteCookie on the response to every request that may
// write (any method but GET, HEAD and OPTIONS), just before its headers go
// out: by then the handler's writes are committed, so the primary's WAL
// position is at or past them. Without a read replica it does nothing.
func (s *Server) markWrites(next http.Handler) http.Handler {
	if s.opts.ReadStore == nil || s.opts.Reads == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet, r.Method == http.MethodHead, r.Method == http.MethodOptions,
			strings.HasPrefix(r.URL.Path, jobsPath): // River's UI works River's tables, which pages do not read
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&writeMarker{ResponseWriter: w, s: s, r: r}, r)
	})
}

type writeMarker struct {
	http.ResponseWriter
	s      *Server
	r      *http.Request
	marked bool
}

func (m *writeMarker) WriteHeader(code int) {
	m.mark()
	m.ResponseWriter.WriteHeader(code)
}

func (m *writeMarker) Write(b []byte) (int, error) {
	m.mark()
	return m.ResponseWriter.Write(b)
}

func (m *writeMarker) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (m *writeMarker) mark() {
	if m.marked {
		return
	}
	m.marked = true
	ctx, cancel := context.WithTimeout(m.r.Context(), 2*time.Second)
	defer cancel()
	pos, err := m.s.opts.Reads.WritePosition(ctx)
	if err != nil {
		m.s.log.Warn("read-your-writes: the primary's WAL position is unknown; this browser reads from the primary for a minute",
			zap.Error(err))
		pos = allWrites
	}
	http.SetCookie(m.ResponseWriter, &http.Cookie{Name: m.s.cookieName(wroteCookie), Value: pos.String(), Path: "/",
		MaxAge: wroteCookieAge, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: m.s.https()})
}
