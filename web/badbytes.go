package web

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// cleanText says whether s may reach the database as text: PostgreSQL
// refuses a NUL byte and invalid UTF-8 in a text value (SQLSTATE 22021), so
// such a value in a page parameter would be a 500, and on a read replica a
// read failure.
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// cleanValues says whether every name and value of a query or form is clean text.
func cleanValues(vs map[string][]string) bool {
	for k, list := range vs {
		if !cleanText(k) {
			return false
		}
		for _, v := range list {
			if !cleanText(v) {
				return false
			}
		}
	}
	return true
}

// cleanRequest says whether the request's path, query and (already parsed)
// form hold only clean text. The query is read leniently, as the handlers
// read it: a pair that does not decode is dropped by them too.
func cleanRequest(r *http.Request) bool {
	return cleanText(r.URL.Path) && cleanValues(r.URL.Query()) && cleanValues(r.PostForm)
}

// refuseBadBytes answers 400 to a request whose path, query or form holds a
// NUL byte or invalid UTF-8, before any handler or session reads it: no
// parameter of ours can hold either, and no such value ever reaches a query.
func (s *Server) refuseBadBytes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cleanRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		rc := s.NewRequest(r)
		rc.Path = "/" // the language switch must not carry the bytes back
		w.Header().Set("Cache-Control", "no-store")
		s.RenderStatus(w, r, http.StatusBadRequest,
			messagePage(s.Layout(rc, rc.Lang.T("badinput.title")), rc.Lang.T("badinput.body"), ""))
	})
}

// refuseBadBytesAPI is refuseBadBytes for /api/v1/me: a problem+json 400.
func refuseBadBytesAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cleanRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeProblem(w, http.StatusBadRequest, "bad-request", "Bad request", "The address holds a NUL byte or text that is not UTF-8.")
	})
}
