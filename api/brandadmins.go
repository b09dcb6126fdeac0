package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

func emailParam(r *http.Request) string {
	raw := chi.URLParam(r, "email")
	if dec, err := url.PathUnescape(raw); err == nil {
		raw = dec
	}
	return raw
}

func (h *handler) listBrandAdmins(w http.ResponseWriter, r *http.Request) error {
	emails, err := h.svc.BrandAdmins(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return fromService(err)
	}
	items := make([]map[string]string, 0, len(emails))
	for _, e := range emails {
		items = append(items, map[string]string{"email": e})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (h *handler) putBrandAdmin(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.svc.PutBrandAdmin(r.Context(), h.actor(r), chi.URLParam(r, "id"), emailParam(r)); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteBrandAdmin(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.svc.DeleteBrandAdmin(r.Context(), h.actor(r), chi.URLParam(r, "id"), emailParam(r)); err != nil {
		return fromService(err)
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
	events, err := h.svc.AuditEvents(r.Context(), before, limit)
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
