package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// NotificationDefaultsWrite is the language and time zone of an
// integration's emails and chat messages for people who never signed in
// (those who did get their own). "" means the service's default: English, UTC.
type NotificationDefaultsWrite struct {
	Language *string `json:"language"`
	TimeZone *string `json:"timeZone"`
}

func integrationNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("This integration")
	}
	return err
}

// NotificationDefaults returns the integration's notification defaults.
func (s *Service) NotificationDefaults(ctx context.Context, id string) (store.NotificationDefaults, error) {
	d, err := s.o.Store.GetNotificationDefaults(ctx, id)
	return d, integrationNotFound(err)
}

// SetNotificationDefaults validates and stores the integration's
// notification defaults; a field left out is set to the service's default.
func (s *Service) SetNotificationDefaults(ctx context.Context, actor, id string, body NotificationDefaultsWrite) error {
	var d store.NotificationDefaults
	var errs []microapps.FieldError
	if body.Language != nil {
		switch *body.Language {
		case "", "en", "fr":
			d.Language = *body.Language
		default:
			errs = append(errs, microapps.FieldError{Field: "language", Message: `must be "en", "fr" or "" (the service's default)`})
		}
	}
	if body.TimeZone != nil && *body.TimeZone != "" {
		tz := *body.TimeZone
		if _, err := time.LoadLocation(tz); err != nil || strings.EqualFold(tz, "local") || len(tz) > 64 {
			errs = append(errs, microapps.FieldError{Field: "timeZone", Message: fmt.Sprintf(`%q is not an IANA time zone such as "Europe/Paris" or "UTC"`, tz)})
		} else {
			d.TimeZone = tz
		}
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	return integrationNotFound(s.o.Store.SetNotificationDefaults(ctx, id, d, audit(actor, "notification_defaults.set",
		map[string]any{"language": d.Language, "timeZone": d.TimeZone})))
}
