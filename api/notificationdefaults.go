package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps/store"
)

// notificationDefaults is the language and time zone of an integration's
// emails and chat messages for people who never signed in (those who did get
// their own). "" means the service's default: English, UTC.
type notificationDefaults struct {
	Language *string `json:"language"`
	TimeZone *string `json:"timeZone"`
}

type notificationDefaultsResource struct {
	Language string `json:"language"`
	TimeZone string `json:"timeZone"`
}

// defaultsStore keeps the defaults; *store.Store has it. A Store without it
// has no such resource (404).
type defaultsStore interface {
	GetNotificationDefaults(ctx context.Context, integrationID string) (store.NotificationDefaults, error)
	SetNotificationDefaults(ctx context.Context, integrationID string, d store.NotificationDefaults, audit store.AuditEvent) error
}

func (h *handler) defaults() (defaultsStore, error) {
	if ds, ok := h.Store.(defaultsStore); ok {
		return ds, nil
	}
	return nil, errNotFound("This route")
}

func notFoundIntegration(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("This integration")
	}
	return err
}

func (h *handler) getNotificationDefaults(w http.ResponseWriter, r *http.Request) error {
	ds, err := h.defaults()
	if err != nil {
		return err
	}
	d, err := ds.GetNotificationDefaults(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return notFoundIntegration(err)
	}
	writeJSON(w, http.StatusOK, notificationDefaultsResource(d))
	return nil
}

func (h *handler) putNotificationDefaults(w http.ResponseWriter, r *http.Request) error {
	var body notificationDefaults
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	var d store.NotificationDefaults
	var errs []fieldError
	if body.Language != nil {
		switch *body.Language {
		case "", "en", "fr":
			d.Language = *body.Language
		default:
			errs = append(errs, fieldError{"language", `must be "en", "fr" or "" (the service's default)`})
		}
	}
	if body.TimeZone != nil && *body.TimeZone != "" {
		tz := *body.TimeZone
		if _, err := time.LoadLocation(tz); err != nil || strings.EqualFold(tz, "local") || len(tz) > 64 {
			errs = append(errs, fieldError{"timeZone", fmt.Sprintf(`%q is not an IANA time zone such as "Europe/Paris" or "UTC"`, tz)})
		} else {
			d.TimeZone = tz
		}
	}
	if len(errs) > 0 {
		return errValidation(errs)
	}
	ds, err := h.defaults()
	if err != nil {
		return err
	}
	if err := ds.SetNotificationDefaults(r.Context(), chi.URLParam(r, "id"), d, store.AuditEvent{Actor: actorFrom(r.Context()),
		Action: "notification_defaults.set", Details: map[string]any{"language": d.Language, "timeZone": d.TimeZone}}); err != nil {
		return notFoundIntegration(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
