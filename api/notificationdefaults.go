package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

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

func (h *handler) getNotificationDefaults(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	d, err := h.Store.GetNotificationDefaults(r.Context(), in.ID)
	if err != nil {
		return err
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
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	if err := h.Store.SetNotificationDefaults(r.Context(), in.ID, d,
		h.audit(r, "notification_defaults.set", map[string]any{"language": d.Language, "timeZone": d.TimeZone})); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
