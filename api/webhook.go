package api

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

type webhookWrite struct {
	URL    *string `json:"url"`
	Secret *string `json:"secret"`
	Format *string `json:"format"`
}

type webhookResource struct {
	URL    string `json:"url"`
	Format string `json:"format"`
	Signed bool   `json:"signed"`
}

// webhookURLShown hides the path and query of a webhook URL: Slack and Teams
// URLs carry their secret there.
func webhookURLShown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return u.Scheme + "://" + u.Host + "/"
}

// webhookHostAllowed refuses the destinations a webhook must never reach that
// can be told from the URL alone: an IP literal that is not public, a
// localhost name, a numeric spelling of an address (2130706433, 0177.0.0.1).
// A name that resolves to an internal address is refused when the delivery
// dials (notify.WebhookClient); hosts in WebhookAllowedHosts pass both.
func (h *handler) webhookHostAllowed(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return false
	}
	for _, a := range h.WebhookAllowedHosts {
		if strings.EqualFold(strings.TrimSpace(a), host) {
			return true
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return qualtrics.PublicAddress(ip)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	// A real host name ends in a top-level label that starts with a letter;
	// one that does not (2130706433, 0x7f.1) is a resolver's alternative
	// spelling of an IPv4 address.
	last := host[strings.LastIndex(host, ".")+1:]
	return last != "" && last[0] >= 'a' && last[0] <= 'z'

}

func (h *handler) getWebhook(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	wh, err := h.Store.GetWebhook(r.Context(), in.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, webhookResource{URL: webhookURLShown(wh.URL), Format: orJSON(wh.Format), Signed: len(wh.SecretSealed) > 0})
	return nil
}

func orJSON(f string) string {
	if f == "" {
		return "json"
	}
	return f
}

func (h *handler) putWebhook(w http.ResponseWriter, r *http.Request) error {
	var body webhookWrite
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	var errs []fieldError
	wh := store.Webhook{Format: "json"}
	if body.URL == nil {
		errs = append(errs, fieldError{"url", "is required"})
	} else if u, err := url.Parse(*body.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(*body.URL) > 2000 {
		errs = append(errs, fieldError{"url", "must be an absolute http(s) URL without user info, at most 2000 characters"})
	} else if !h.webhookHostAllowed(u) {
		errs = append(errs, fieldError{"url", "must not point at a loopback, private, link-local or other internal address"})
	} else {
		wh.URL = *body.URL
	}
	if body.Format != nil {
		switch *body.Format {
		case "json", "slack", "teams":
			wh.Format = *body.Format
		default:
			errs = append(errs, fieldError{"format", `must be "json", "slack" or "teams"`})
		}
	}
	if body.Secret != nil {
		if msg := checkSecret(*body.Secret); msg != "" {
			errs = append(errs, fieldError{"secret", msg})
		} else if len(*body.Secret) < 16 {
			errs = append(errs, fieldError{"secret", "must be at least 16 characters"})
		}
	}
	if len(errs) > 0 {
		return errValidation(errs)
	}
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	if body.Secret != nil {
		if h.SealWebhookSecret == nil {
			return errors.New("api: no webhook secret sealer configured")
		}
		if wh.SecretKeyID, wh.SecretSealed, err = h.SealWebhookSecret(in.ID, *body.Secret); err != nil {
			return err
		}
	}
	if err := h.Store.SetWebhook(r.Context(), in.ID, wh, h.audit(r, "webhook.set",
		map[string]any{"url": webhookURLShown(wh.URL), "format": wh.Format, "signed": body.Secret != nil})); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	if err := h.Store.SetWebhook(r.Context(), in.ID, store.Webhook{}, h.audit(r, "webhook.delete", nil)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deliveryResource struct {
	ID             int64      `json:"id"`
	NotificationID int64      `json:"notificationId"`
	Kind           string     `json:"kind"`
	Email          string     `json:"email"`
	Channel        string     `json:"channel"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastError      string     `json:"lastError"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	DeliveredAt    *time.Time `json:"deliveredAt"`
}

func (h *handler) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	in, err := h.loadIntegration(r)
	if err != nil {
		return err
	}
	limit, aerr := queryLimit(r, 100, 1000)
	if aerr != nil {
		return aerr
	}
	ds, err := h.Store.ListDeliveries(r.Context(), in.ID, limit)
	if err != nil {
		return err
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
