// Package api is the admin REST API under /api/v1: integrations with sealed
// credentials, Brand Admins, sync control, request logs and the audit trail.
// Errors are application/problem+json; no answer ever carries a secret.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/microapps/microapps/internal/budget"
	"github.com/microapps/microapps/internal/problem"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Options configure the API.
type Options struct {
	// Service holds every rule about integrations; the handlers only speak
	// HTTP (the replica shares one service with the console).
	Service *manage.Service
	// Keyring derives the key that names admin tokens in the audit trail
	// (nil: a random key for this process).
	Keyring     *seal.Keyring
	AdminTokens []string
	Log         *zap.Logger
	// RequestIDFrom returns the request id set by the app's middleware, for
	// the instance field of problems and for logs.
	RequestIDFrom func(context.Context) string
	// AuthFailureRate and AuthFailureBurst throttle wrong or missing admin
	// tokens per source address (an IPv6 /64): a source may fail
	// AuthFailureBurst times at once (each a 401), then AuthFailureRate times
	// a second; past that it gets 429 with Retry-After, before its token is
	// even checked, until the budget refills. Defaults 0.2/s and 10. A
	// request with a valid token spends nothing.
	AuthFailureRate  float64
	AuthFailureBurst int
}

type handler struct {
	Options
	svc         *manage.Service
	tokenHashes [][32]byte
	// actorKey names admin tokens in the audit trail (HMAC-SHA256): derived
	// from the encryption keyring, or random for this process without one.
	actorKey []byte
	// authFailures are the failure budgets of the source addresses that
	// sent a wrong or no admin token (AuthFailureRate).
	authFailures *budget.Set
}

// New returns the router for /api/v1 (mount it there).
func New(opts Options) http.Handler {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.RequestIDFrom == nil {
		opts.RequestIDFrom = func(context.Context) string { return "" }
	}
	if opts.AuthFailureRate <= 0 {
		opts.AuthFailureRate = 0.2
	}
	if opts.AuthFailureBurst <= 0 {
		opts.AuthFailureBurst = 10
	}
	h := &handler{Options: opts, svc: opts.Service, authFailures: budget.New(rate.Limit(opts.AuthFailureRate), opts.AuthFailureBurst)}
	if opts.Keyring != nil {
		h.actorKey = opts.Keyring.MAC("audit actor", nil)
	} else {
		h.actorKey = make([]byte, 32)
		_, _ = rand.Read(h.actorKey)
	}
	for _, t := range opts.AdminTokens {
		h.tokenHashes = append(h.tokenHashes, sha256.Sum256([]byte(t)))
	}

	r := chi.NewRouter()
	r.Use(nosniff)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { h.fail(w, r, errNotFound("This route")) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &apiError{status: http.StatusMethodNotAllowed, kind: "method-not-allowed", title: "Method not allowed",
			detail: r.Method + " is not allowed on this route."})
	})
	r.Get("/openapi.yaml", serveSpec)
	r.Group(func(r chi.Router) {
		r.Use(h.requireAdmin)
		r.Post("/integrations", h.wrap(h.createIntegration))
		r.Get("/integrations", h.wrap(h.listIntegrations))
		r.Get("/integrations/{id}", h.wrap(h.getIntegration))
		r.Patch("/integrations/{id}", h.wrap(h.patchIntegration))
		r.Delete("/integrations/{id}", h.wrap(h.deleteIntegration))
		r.Put("/integrations/{id}/token", h.wrap(h.putToken))
		r.Post("/integrations/{id}/syncs", h.wrap(h.triggerSync))
		r.Get("/integrations/{id}/syncs", h.wrap(h.listSyncs))
		r.Get("/integrations/{id}/syncs/{syncId}", h.wrap(h.getSync))
		r.Get("/integrations/{id}/logs", h.wrap(h.listLogs))
		r.Get("/integrations/{id}/brand-admins", h.wrap(h.listBrandAdmins))
		r.Put("/integrations/{id}/brand-admins/{email}", h.wrap(h.putBrandAdmin))
		r.Delete("/integrations/{id}/brand-admins/{email}", h.wrap(h.deleteBrandAdmin))
		r.Get("/integrations/{id}/deliveries", h.wrap(h.listDeliveries))
		r.Get("/integrations/{id}/webhook", h.wrap(h.getWebhook))
		r.Put("/integrations/{id}/webhook", h.wrap(h.putWebhook))
		r.Delete("/integrations/{id}/webhook", h.wrap(h.deleteWebhook))
		r.Get("/integrations/{id}/notification-defaults", h.wrap(h.getNotificationDefaults))
		r.Put("/integrations/{id}/notification-defaults", h.wrap(h.putNotificationDefaults))
		r.Get("/audit-events", h.wrap(h.listAuditEvents))
	})
	return r
}

// nosniff keeps every answer of the API (JSON, problems, the YAML spec) from
// being sniffed into something a browser would render.
func nosniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

type actorKey struct{}

// requireAdmin checks the bearer token against every admin token in constant
// time; the actor recorded in the audit trail is a hash prefix, never the token.
func (h *handler) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A source that has failed too often is not even checked: its
		// guesses are slowed to AuthFailureRate.
		src := budget.Source(r.RemoteAddr)
		if h.authFailures.Empty(src) {
			w.Header().Set("Retry-After", strconv.Itoa(h.authRetryAfter()))
			h.fail(w, r, &apiError{status: http.StatusTooManyRequests, kind: "rate-limited", title: "Too many requests",
				detail: "Too many requests with a wrong or missing admin token from this address; retry later."})
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			h.authFailures.Of(src).Allow() // spend one failure
			w.Header().Set("WWW-Authenticate", `Bearer realm="microapps admin"`)
			h.fail(w, r, &apiError{status: http.StatusUnauthorized, kind: "unauthorized", title: "Unauthorized",
				detail: "Send an admin token as Authorization: Bearer <token>."})
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := 0
		for _, want := range h.tokenHashes {
			match |= subtle.ConstantTimeCompare(sum[:], want[:])
		}
		if match != 1 {
			h.authFailures.Of(src).Allow() // spend one failure
			w.Header().Set("WWW-Authenticate", `Bearer realm="microapps admin", error="invalid_token"`)
			h.fail(w, r, &apiError{status: http.StatusUnauthorized, kind: "unauthorized", title: "Unauthorized",
				detail: "The admin token is not valid."})
			return
		}
		// An HMAC under a server key: a plain hash of the token (the old
		// 32-bit prefix) can be checked against guesses by anyone who reads
		// the audit trail.
		m := hmac.New(sha256.New, h.actorKey)
		m.Write([]byte(strings.TrimSpace(token)))
		actor := "admin-token:" + hex.EncodeToString(m.Sum(nil)[:8])
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)))
	})
}

// authRetryAfter is the Retry-After of a throttled source, in seconds: the
// time one failure takes to refill.
func (h *handler) authRetryAfter() int {
	return max(1, int(math.Ceil(1/h.AuthFailureRate)))
}

func actorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// actor is who the audit trail names for this request.
func (h *handler) actor(r *http.Request) string { return actorFrom(r.Context()) }

// wrap adapts handlers that return an error: an *apiError becomes its problem,
// anything else a generic 500 with the detail only in the log.
func (h *handler) wrap(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	}
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	reqID := h.RequestIDFrom(r.Context())
	var ae *apiError
	if !errors.As(err, &ae) {
		if errors.Is(err, store.ErrNotFound) {
			ae = errNotFound("This resource")
		} else {
			h.Log.Error("admin api: internal error", zap.String("requestId", reqID), zap.String("path", r.URL.Path), zap.Error(err))
			ae = &apiError{status: http.StatusInternalServerError, kind: "internal", title: "Internal server error",
				detail: "Something went wrong on our side; the request id helps an operator find it in the logs."}
		}
	}
	p := problem.New(ae.status, ae.kind, ae.title, ae.detail)
	p.Errors = ae.fields
	if reqID != "" {
		p.Instance = "urn:request:" + reqID
	}
	problem.Write(w, p)
}
