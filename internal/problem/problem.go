// Package problem writes RFC 9457 problem details, the body of every error
// answer of the product's JSON endpoints (the admin API, /api/v1/me, the
// event hooks), so all of them answer an error the same way.
package problem

import (
	"encoding/json"
	"net/http"
)

// TypeBase prefixes a problem's kind to make its type URI.
const TypeBase = "https://microapps.dev/problems/"

// Problem is one problem detail.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	Instance string       `json:"instance,omitempty"`
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// New is the problem of a kind ("not-found", "validation"), its type URI
// under TypeBase.
func New(status int, kind, title, detail string) Problem {
	return Problem{Type: TypeBase + kind, Title: title, Status: status, Detail: detail}
}

// Write sends p, never cached and never sniffed.
func Write(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
