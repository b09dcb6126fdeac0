package web

// Who may use the platform admin console, the wrapper of its pages and the
// routes of River's job UI under it. The console's pages are package
// web/console's, mounted with AddRoutes.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
)

const (
	sessConsole   = "console_group"    // oidc: this sign-in's claims held the platform admin group (true or false)
	sessConsoleAt = "console_group_at" // oidc: when that was read from the provider (Unix seconds)
	maxJobsBody   = 1 << 20            // River's UI posts small JSON bodies to its API
)

// consoleGroupRecheck bounds how long the platform admin group read at
// sign-in grants the console: after it, the console sends the user through
// the provider again, so someone removed from the group loses the console
// within this interval, not at the end of a 12-hour session.
const consoleGroupRecheck = 15 * time.Minute

// consoleAccess is what the session says about the console.
type consoleAccess int

const (
	consoleDenied consoleAccess = iota
	consoleGranted
	// consoleRecheck: the group granted the console, longer ago than
	// consoleGroupRecheck; a new sign-in must confirm it.
	consoleRecheck
)

// isPlatformAdmin reports whether the signed-in user may use the console:
// named in MICROAPPS_PLATFORM_ADMINS, or (oidc) signed in with the
// MICROAPPS_PLATFORM_ADMIN_GROUP group claim less than consoleGroupRecheck ago.
func (s *Server) isPlatformAdmin(r *http.Request, email string) bool {
	return s.consoleAccess(r, email) == consoleGranted
}

func (s *Server) consoleAccess(r *http.Request, email string) consoleAccess {
	if !s.opts.Console || email == "" {
		return consoleDenied
	}
	if s.platformAdmins[email] {
		return consoleGranted
	}
	if s.oidc == nil || s.opts.PlatformAdminGroup == "" || !s.sessions.GetBool(r.Context(), sessConsole) {
		return consoleDenied
	}
	at := time.Unix(s.sessions.GetInt64(r.Context(), sessConsoleAt), 0)
	if age := s.now().Sub(at); age < 0 || age >= consoleGroupRecheck {
		return consoleRecheck
	}
	return consoleGranted
}

// rememberConsoleGroup records at sign-in whether the user's groups claim
// (from the ID token or UserInfo; a list or a single string) holds the
// platform admin group, true or false, and when it was read. The session was
// cleared just before: nothing of an earlier sign-in survives.
func (s *Server) rememberConsoleGroup(ctx context.Context, groups json.RawMessage) {
	if s.opts.PlatformAdminGroup == "" {
		return
	}
	s.sessions.Put(ctx, sessConsole, inGroup(groups, s.opts.PlatformAdminGroup))
	s.sessions.Put(ctx, sessConsoleAt, s.now().Unix())
}

// inGroup says whether a groups claim (a list of names or one name) holds group.
func inGroup(groups json.RawMessage, group string) bool {
	if len(groups) == 0 {
		return false
	}
	var list []string
	if json.Unmarshal(groups, &list) != nil {
		var one string
		if json.Unmarshal(groups, &one) != nil {
			return false
		}
		list = []string{one}
	}
	return slices.Contains(list, group)
}

// console wraps a console handler: signed in like every page, then 404 for
// anyone who is not a platform admin.
func (s *Server) ConsolePage(h PageHandler) http.HandlerFunc {
	return s.Page(func(w http.ResponseWriter, r *http.Request, rc *Request) error {
		if !rc.PlatformAdmin {
			if s.consoleAccess(r, rc.Email) == consoleRecheck {
				// The group is confirmed again by signing in again.
				s.Unauthenticated(w, r, rc)
				return nil
			}
			return ErrNotFound
		}
		// Form bodies were read and bounded before, by limitForms, as for every page.
		return h(w, r, rc)
	})
}

// jobsGate lets only platform admins through to River's job UI.
func (s *Server) jobsGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := s.NewRequest(r)
		email, err := s.UserEmail(r)
		if err != nil {
			s.Unauthenticated(w, r, rc)
			return
		}
		switch s.consoleAccess(r, email) {
		case consoleGranted:
		case consoleRecheck:
			s.Unauthenticated(w, r, rc)
			return
		default:
			s.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxJobsBody)
		}
		next.ServeHTTP(w, r)
	})
}

// jobsRoutes mounts River's job UI for platform admins.
func (s *Server) jobsRoutes(mux chi.Router) {
	if s.opts.JobsUI != nil {
		mux.Handle(jobsPath+"*", s.jobsGate(s.opts.JobsUI))
		mux.Get("/console/jobs", http.RedirectHandler("/console/jobs/", http.StatusMovedPermanently).ServeHTTP)
	}
}
