package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/manage"
)

type webhookResource struct {
	URL    string                  `json:"url"`
	Format microapps.WebhookFormat `json:"format"`
	Signed bool                    `json:"signed"`
}

func (h *handler) getWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := h.svc.Webhook(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return fromService(err)
	}
	writeJSON(w, http.StatusOK, webhookResource{URL: wh.URL, Format: wh.Format, Signed: wh.Signed})
	return nil
}

func (h *handler) putWebhook(w http.ResponseWriter, r *http.Request) error {
	var body manage.WebhookWrite
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	if err := h.svc.SetWebhook(r.Context(), h.actor(r), chi.URLParam(r, "id"), body); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteWebhook(r.Context(), h.actor(r), chi.URLParam(r, "id")); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deliveryResource struct {
	ID             int64                      `json:"id"`
	NotificationID int64                      `json:"notificationId"`
	Kind           microapps.NotificationKind `json:"kind"`
	Email          string                     `json:"email"`
	Channel        microapps.Channel          `json:"channel"`
	Status         microapps.DeliveryStatus   `json:"status"`
	Attempts       int                        `json:"attempts"`
	LastError      string                     `json:"lastError"`
	CreatedAt      time.Time                  `json:"createdAt"`
	UpdatedAt      time.Time                  `json:"updatedAt"`
	DeliveredAt    *time.Time                 `json:"deliveredAt"`
}

func (h *handler) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, err := h.integrationLimit(r, 100, 1000)
	if err != nil {
		return err
	}
	ds, err := h.svc.Deliveries(r.Context(), chi.URLParam(r, "id"), limit)
	if err != nil {
		return fromService(err)
	}
	items := make([]deliveryResource, 0, len(ds))
	for _, d := range ds {
		items = append(items, deliveryResource{ID: d.ID, NotificationID: d.NotificationID, Kind: d.Kind, Email: d.Email,
			Channel: d.Channel, Status: d.Status, Attempts: d.Attempts, LastError: strings.TrimSpace(d.LastError),
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, DeliveredAt: d.DeliveredAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}
