package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps/manage"
)

type notificationDefaultsResource struct {
	Language string `json:"language"`
	TimeZone string `json:"timeZone"`
}

func (h *handler) getNotificationDefaults(w http.ResponseWriter, r *http.Request) error {
	d, err := h.svc.NotificationDefaults(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return fromService(err)
	}
	writeJSON(w, http.StatusOK, notificationDefaultsResource(d))
	return nil
}

func (h *handler) putNotificationDefaults(w http.ResponseWriter, r *http.Request) error {
	var body manage.NotificationDefaultsWrite
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	if err := h.svc.SetNotificationDefaults(r.Context(), h.actor(r), chi.URLParam(r, "id"), body); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
