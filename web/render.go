package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

// Request is what every page handler needs about the request.
type Request struct {
	Email   string // "" when not signed in
	Lang    Lang
	Loc     *time.Location
	Now     time.Time
	Path    string // for the language switch to come back to
	Summary store.UserSummary
	// Read is the store this request reads from: the primary's, or a read
	// replica's (Standby true) for the pages and /api/v1/me.
	Read    Store
	Standby bool
	// PlatformAdmin: may use the console (MICROAPPS_PLATFORM_ADMINS or the OIDC group).
	PlatformAdmin bool
}

func (s *Server) NewRequest(r *http.Request) *Request {
	return &Request{Lang: pickLang(r, s.cookieName(langCookie)), Loc: s.zones.userLocation(r), Now: s.now(), Path: r.URL.RequestURI(),
		Read: s.opts.Store}
}

// ErrNotFound from a handler renders the 404 page: the same page whether the
// item does not exist or belongs to someone else.
var ErrNotFound = errors.New("web: not found")

type PageHandler func(w http.ResponseWriter, r *http.Request, rc *Request) error

// page authenticates the user, loads what the layout shows, and turns
// handler errors into the 404 or 500 page.
func (s *Server) Page(h PageHandler) http.HandlerFunc { return s.PageWith(h, true) }

// pageWith is page for handlers that may load the layout's UserSummary
// themselves (summary false), together with their own data.
func (s *Server) PageWith(h PageHandler, summary bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := s.NewRequest(r)
		email, err := s.UserEmail(r)
		if err != nil {
			s.Unauthenticated(w, r, rc)
			return
		}
		rc.Email = email
		rc.PlatformAdmin = s.isPlatformAdmin(r, email)
		rc.Read, rc.Standby = s.reader(r)
		s.rememberLocale(r, rc)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Vary", "Cookie, Accept-Language")
		serve := func() error {
			if summary {
				if rc.Summary, err = rc.Read.UserSummary(r.Context(), email, rc.Now); err != nil {
					return err
				}
			}
			return h(w, r, rc)
		}
		err = serve()
		// A page the read replica failed to serve, or did not find (a row
		// it has not replayed yet), is read again from the primary. Handlers
		// write nothing before they succeed, and GET pages write nothing.
		if err != nil && rc.Standby && r.Context().Err() == nil {
			s.readAgain(err)
			rc.Read, rc.Standby = s.opts.Store, false
			err = serve()
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
			s.renderNotFound(w, r, rc)
		default:
			s.serverError(w, r, err)
		}
	}
}

// Layout is the view model of the shared page frame.
type Layout struct {
	Lang    Lang
	Title   string
	Nav     string // the current section: my, admin, notifications
	User    string
	Unread  int
	IsAdmin bool
	// IsPlatformAdmin shows the console in the navigation.
	IsPlatformAdmin bool
	ConsoleJobs     bool // River's UI is mounted under /console/jobs
	CSS, JS         string
	Path            string
	SignOut         bool
	Stale           []string
	Icon            string
	TZ              string // the zone times are shown in; app.js reloads once when it learns the real one
}

func (s *Server) Layout(rc *Request, title string) Layout {
	return Layout{
		Lang:            rc.Lang,
		Title:           title,
		User:            rc.Email,
		Unread:          rc.Summary.Unread,
		IsAdmin:         rc.Summary.IsAdmin,
		IsPlatformAdmin: rc.PlatformAdmin,
		CSS:             s.static.url("app.css"),
		JS:              s.static.url("app.js"),
		Icon:            s.static.url("favicon.svg"),
		Path:            rc.Path,
		SignOut:         rc.Email != "" && s.sessions != nil,
		TZ:              rc.Loc.String(),
	}
}

// staleNotes says which integrations' data may be out of date.
func (s *Server) staleNotes(rc *Request, refs ...store.IntegrationRef) []string {
	var out []string
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref.ID] || !ref.Freshness.Stale(rc.Now) {
			continue
		}
		seen[ref.ID] = true
		if ref.Freshness.LastSuccessAt == nil {
			out = append(out, rc.Lang.T("stale.never", ref.Name))
		} else {
			out = append(out, rc.Lang.T("stale", ref.Name, absTime(*ref.Freshness.LastSuccessAt, rc.Loc, rc.Lang)))
		}
	}
	return out
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes c as a 200 page.
func (s *Server) Render(w http.ResponseWriter, r *http.Request, c templ.Component) {
	s.RenderStatus(w, r, http.StatusOK, c)
}

// renderStatus renders into a buffer first, so a failing component becomes a
// clean 500 page instead of half a page.
func (s *Server) RenderStatus(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := c.Render(r.Context(), buf); err != nil {
		s.log.Error("render page", zap.Error(err), zap.String("requestId", w.Header().Get("X-Request-Id")))
		s.plainError(w)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// serverError logs the cause with the request id and shows a generic page.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	id := w.Header().Get("X-Request-Id")
	if errors.Is(err, context.Canceled) {
		s.log.Info("request cancelled", zap.String("requestId", id), zap.String("path", LogPath(r.URL.Path)))
	} else {
		s.log.Error("serve page", zap.Error(err), zap.String("requestId", id), zap.String("path", LogPath(r.URL.Path)))
	}
	rc := s.NewRequest(r)
	ref := ""
	if id != "" {
		ref = rc.Lang.T("error.ref", id)
	}
	s.RenderStatus(w, r, http.StatusInternalServerError,
		messagePage(s.Layout(rc, rc.Lang.T("error.title")), rc.Lang.T("error.body")+" "+ref, ""))
}

// plainError is the last resort when even the error page cannot render.
func (s *Server) plainError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = fmt.Fprint(w, `<!doctype html><html lang="en"><meta charset="utf-8"><title>Error – microapps</title><h1>Sorry, there is a problem</h1><p>Try again in a few minutes.</p></html>`)
}

func (s *Server) renderNotFound(w http.ResponseWriter, r *http.Request, rc *Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.RenderStatus(w, r, http.StatusNotFound,
		messagePage(s.Layout(rc, rc.Lang.T("notfound.title")), rc.Lang.T("notfound.body"), ""))
}

// notFoundHandler serves unknown paths with the same page as a hidden item.
func (s *Server) NotFound(w http.ResponseWriter, r *http.Request) {
	rc := s.NewRequest(r)
	if email, err := s.UserEmail(r); err == nil {
		rc.Email = email
		rc.Summary, _ = s.opts.Store.UserSummary(r.Context(), email, rc.Now)
	}
	s.renderNotFound(w, r, rc)
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request) {
	rc := s.NewRequest(r)
	s.RenderStatus(w, r, http.StatusForbidden,
		messagePage(s.Layout(rc, rc.Lang.T("forbidden.title")), rc.Lang.T("forbidden.body"), ""))
}

// setLang remembers the chosen language for a year and goes back.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	l, ok := parseLang(r.PostFormValue("lang"))
	if !ok {
		l = LangEN
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(langCookie), Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.https()})
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

//go:embed static
var staticFS embed.FS

// staticFiles serves the embedded assets under content-hashed names
// (app.3f9a1c2b.css), so they can be cached forever.
type staticFiles struct {
	byName map[string]string // app.css -> /static/app.3f9a1c2b.css
	byPath map[string]asset  // app.3f9a1c2b.css -> content
}

type asset struct {
	body  []byte
	ctype string
}

func newStaticFiles() (*staticFiles, error) {
	sf := &staticFiles{byName: map[string]string{}, byPath: map[string]asset{}}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	for _, e := range entries {
		body, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("web: static files: %w", err)
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:4]) + ext
		sf.byName[e.Name()] = "/static/" + hashed
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		sf.byPath[hashed] = asset{body: body, ctype: ct}
	}
	return sf, nil
}

func (sf *staticFiles) url(name string) string { return sf.byName[name] }

func (sf *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := sf.byPath[r.PathValue("file")]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(a.body)
}
