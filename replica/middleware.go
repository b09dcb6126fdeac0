package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"

	"github.com/microapps/microapps/web"
)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID gives every request an id, returned in X-Request-Id and logged. An
// id sent by a proxy is kept when it is short and plain, so traces join up.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !plainID(id) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// transportHeaders sets what every answer carries whatever route made it:
// nosniff (JSON, problems, text are never to be sniffed into HTML), and over
// https, Strict-Transport-Security.
func transportHeaders(https bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			if https {
				h.Set("Strict-Transport-Security", web.HSTS)
			}
			next.ServeHTTP(w, r)
		})
	}
}

func plainID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// requestIDFrom returns the request's id ("" outside a request).
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// observe logs one line per request, after it is served, and counts it with
// its latency by chi route pattern. The pattern
// (/surveys/{integrationId}/{distributionId}), never the raw path, is the
// metric label, so a crawler cannot create unbounded series; requests that
// match no route share route="unmatched". The query string is left out of the
// log: it may carry an OIDC code or state.
func observe(log *zap.Logger, m *metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			elapsed := time.Since(start)
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			log.Info("http request",
				zap.String("requestId", requestIDFrom(r.Context())),
				zap.String("method", r.Method),
				zap.String("path", web.LogPath(r.URL.Path)),
				zap.String("route", route),
				zap.Int("status", status),
				zap.Int("bytes", ww.BytesWritten()),
				zap.Duration("duration", elapsed),
				zap.String("remote", r.RemoteAddr),
			)
			// A mounted router's catch-all ("/*", "/api/v1/*") answering 404
			// matched no real route either.
			if route == "" || status == http.StatusNotFound && strings.HasSuffix(route, "/*") {
				route = "unmatched"
			}
			method := metricMethod(r.Method)
			m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.httpDuration.WithLabelValues(route, method).Observe(elapsed.Seconds())
		})
	}
}

// recoverer turns a panic into a plain 500 and a logged stack, never a stack
// in the response.
func recoverer(log *zap.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic serving request", zap.String("requestId", requestIDFrom(r.Context())),
						zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
					http.Error(w, "Internal server error (request "+requestIDFrom(r.Context())+")", http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
