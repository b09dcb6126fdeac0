package api

import (
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps/store"
)

// normalizeEmail trims and lower-cases an address and checks it is a plain
// addr-spec (no display name), the form recipients are matched by.
func normalizeEmail(raw string) (string, bool) {
	e, ok := store.NormalizeEmail(raw)
	if !ok || len(e) > 320 {
		return "", false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") && !strings.HasSuffix(e, "@localhost") {
		return "", false
	}
	return e, true
}

func (h *handler) emailParam(r *http.Request) (string, *apiError) {
	raw := chi.URLParam(r, "email")
	if dec, err := url.PathUnescape(raw); err == nil {
		raw = dec
	}
	e, ok := normalizeEmail(raw)
	if !ok {
		return "", errValidation([]fieldError{{Field: "email", Message: "must be an email address such as ana@example.com"}})
	}
	return e, nil
}

func (h *handler) listBrandAdmins(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	emails, err := h.Store.ListBrandAdmins(r.Context(), in.ID)
	if err != nil {
		return err
	}
	items := make([]map[string]string, 0, len(emails))
	for _, e := range emails {
		items = append(items, map[string]string{"email": e})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (h *handler) putBrandAdmin(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	email, aerr := h.emailParam(r)
	if aerr != nil {
		return aerr
	}
	if err := h.Store.PutBrandAdmin(r.Context(), in.ID, email, h.audit(r, "brand_admin.add", map[string]any{"email": email})); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteBrandAdmin(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	email, aerr := h.emailParam(r)
	if aerr != nil {
		return aerr
	}
	if err := h.Store.DeleteBrandAdmin(r.Context(), in.ID, email, h.audit(r, "brand_admin.remove", map[string]any{"email": email})); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditEventResource struct {
	ID            int64          `json:"id"`
	At            time.Time      `json:"at"`
	Actor         string         `json:"actor"`
	Action        string         `json:"action"`
	IntegrationID *string        `json:"integrationId"`
	Details       map[string]any `json:"details"`
}

func (h *handler) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	limit, aerr := queryLimit(r, 100, 1000)
	if aerr != nil {
		return aerr
	}
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return errValidation([]fieldError{{Field: "before", Message: "must be an audit event id"}})
		}
		before = n
	}
	events, err := h.Store.ListAuditEvents(r.Context(), before, limit)
	if err != nil {
		return err
	}
	items := make([]auditEventResource, 0, len(events))
	for _, ev := range events {
		res := auditEventResource{ID: ev.ID, At: ev.At, Actor: ev.Actor, Action: ev.Action, Details: ev.Details}
		if ev.IntegrationID != "" {
			id := ev.IntegrationID
			res.IntegrationID = &id
		}
		items = append(items, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}
