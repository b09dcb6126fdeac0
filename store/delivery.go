package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// Delivery is one attempt-tracked sending of a notification over one channel.
type Delivery struct {
	ID             int64
	NotificationID int64
	IntegrationID  string
	Channel        microapps.Channel
	Status         microapps.DeliveryStatus
	Attempts       int
	LastError      string
	IdempotencyKey string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeliveredAt    *time.Time
	// From the notification, so admins can tell deliveries apart.
	Kind  microapps.NotificationKind
	Email string
}

// Webhook is an integration's webhook settings. The secret is sealed by the
// caller; store never sees it in the clear.
type Webhook struct {
	URL          string // "" = no webhook
	SecretSealed []byte // nil = bodies are not signed
	SecretKeyID  string
	Format       microapps.WebhookFormat // "" means JSON
}

// DeliveryWork is everything a delivery job needs, read in one query.
type DeliveryWork struct {
	Delivery        Delivery
	Notification    Notification
	IntegrationName string
	FunctionalGroup string
	Webhook         Webhook

	// For the links: the integration's API and brand hosts and its deep-link
	// templates.
	BaseURL      string
	BrandBaseURL string
	DeepLinks    map[string]string
	// The integration's defaults for people who never signed in.
	Defaults NotificationDefaults
	// The addressee's settings (zero value when none are stored).
	User UserSettings
	// Unsubscribed says the addressee opted out of this integration's
	// Qualtrics email (a recipient row with unsubscribed set): never email
	// them.
	Unsubscribed bool
}

const deliveryColumns = `d.id, d.notification_id, d.integration_id, d.channel, d.status, d.attempts, d.last_error,
	d.idempotency_key, d.created_at, d.updated_at, d.delivered_at, n.kind, n.email`

const deliveriesSQL = `SELECT ` + deliveryColumns + ` FROM deliveries d
	JOIN notifications n ON n.id = d.notification_id
	WHERE d.integration_id = $1 ORDER BY d.id DESC LIMIT $2`

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.NotificationID, &d.IntegrationID, &d.Channel, &d.Status, &d.Attempts, &d.LastError,
		&d.IdempotencyKey, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt, &d.Kind, &d.Email)
	return d, err
}

// ListDeliveries returns an integration's deliveries, newest first, at most
// limit.
func (s *Store) ListDeliveries(ctx context.Context, integrationID string, limit int) ([]Delivery, error) {
	if !ValidUUID(integrationID) {
		return []Delivery{}, nil
	}
	rows, err := s.pool.Query(ctx, deliveriesSQL, integrationID, limit)
	if err != nil {
		return nil, mapErr("list deliveries", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if out == nil {
		out = []Delivery{}
	}
	return out, mapErr("list deliveries", err)
}

// GetDeliveryWork reads a delivery with its notification and its
// integration's webhook settings. ErrNotFound means the delivery is gone
// (its integration was deleted).
func (s *Store) GetDeliveryWork(ctx context.Context, id int64) (DeliveryWork, error) {
	var w DeliveryWork
	n := &w.Notification
	err := s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+`,
		n.id, n.integration_id, n.kind, n.dedupe_key, n.email, n.survey_id, n.distribution_id, n.contact_id,
		n.data, n.created_at, n.expires_at, n.read_at,
		i.name, i.functional_group, i.webhook_url, i.webhook_secret_sealed, i.webhook_secret_key_id, i.webhook_format,
		i.base_url, i.brand_base_url, i.deep_links, i.notification_language, i.notification_time_zone,
		coalesce(us.language, ''), coalesce(us.time_zone, ''), coalesce(us.email_off, false),
		EXISTS (SELECT 1 FROM recipients r WHERE r.email = n.email AND r.integration_id = n.integration_id
			AND r.unsubscribed AND r.deleted_at IS NULL)
		FROM deliveries d
		JOIN notifications n ON n.id = d.notification_id
		LEFT JOIN user_settings us ON us.email = n.email
		JOIN integrations i ON i.id = d.integration_id
		WHERE d.id = $1 AND i.deleted_at IS NULL`, id).Scan(
		&w.Delivery.ID, &w.Delivery.NotificationID, &w.Delivery.IntegrationID, &w.Delivery.Channel, &w.Delivery.Status,
		&w.Delivery.Attempts, &w.Delivery.LastError, &w.Delivery.IdempotencyKey, &w.Delivery.CreatedAt, &w.Delivery.UpdatedAt,
		&w.Delivery.DeliveredAt, &w.Delivery.Kind, &w.Delivery.Email,
		&n.ID, &n.IntegrationID, &n.Kind, &n.DedupeKey, &n.Email, &n.SurveyID, &n.DistributionID, &n.ContactID,
		&n.Data, &n.CreatedAt, &n.ExpiresAt, &n.ReadAt,
		&w.IntegrationName, &w.FunctionalGroup, &w.Webhook.URL, &w.Webhook.SecretSealed, &w.Webhook.SecretKeyID, &w.Webhook.Format,
		&w.BaseURL, &w.BrandBaseURL, &w.DeepLinks, &w.Defaults.Language, &w.Defaults.TimeZone,
		&w.User.Language, &w.User.TimeZone, &w.User.EmailOff, &w.Unsubscribed)
	w.User.Email = n.Email
	return w, mapErr("get delivery", err)
}

// FinishDelivery records the outcome of one attempt: sent (with
// delivered_at), failed (final), skipped, or pending (will be retried).
// A delivery already sent is never changed, so a late duplicate attempt
// cannot turn it back. It reports whether the row changed.
func (s *Store) FinishDelivery(ctx context.Context, id int64, status microapps.DeliveryStatus, lastError string, now time.Time) (bool, error) {
	switch status {
	case microapps.DeliverySent, microapps.DeliveryFailed, microapps.DeliverySkipped, microapps.DeliveryPending:
	default:
		return false, fmt.Errorf("store: finish delivery: bad status %q", status)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET
		status = $2,
		attempts = attempts + CASE WHEN $2 = 'skipped' THEN 0 ELSE 1 END,
		last_error = $3,
		updated_at = $4,
		delivered_at = CASE WHEN $2 = 'sent' THEN $4 ELSE delivered_at END
		WHERE id = $1 AND status <> 'sent'`, id, status, lastError, now)
	if err != nil {
		return false, mapErr("finish delivery", err)
	}
	return tag.RowsAffected() == 1, nil
}

// GetWebhook returns an integration's webhook settings.
func (s *Store) GetWebhook(ctx context.Context, integrationID string) (Webhook, error) {
	if !ValidUUID(integrationID) {
		return Webhook{}, mapErr("get webhook", pgx.ErrNoRows)
	}
	var w Webhook
	err := s.pool.QueryRow(ctx, `SELECT webhook_url, webhook_secret_sealed, webhook_secret_key_id, webhook_format
		FROM integrations WHERE id = $1`, integrationID).Scan(&w.URL, &w.SecretSealed, &w.SecretKeyID, &w.Format)
	return w, mapErr("get webhook", err)
}

// SetWebhook replaces an integration's webhook settings and records the audit
// event (which must not carry the secret) in the same transaction. An empty
// Format means "json".
func (s *Store) SetWebhook(ctx context.Context, integrationID string, w Webhook, audit AuditEvent) error {
	if !ValidUUID(integrationID) {
		return mapErr("set webhook", pgx.ErrNoRows)
	}
	if w.Format == "" {
		w.Format = microapps.WebhookJSON
	}
	if len(w.SecretSealed) == 0 {
		w.SecretSealed, w.SecretKeyID = nil, ""
	}
	return mapErr("set webhook", s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE integrations SET webhook_url = $2, webhook_secret_sealed = $3,
			webhook_secret_key_id = $4, webhook_format = $5, updated_at = now() WHERE id = $1`,
			integrationID, w.URL, w.SecretSealed, w.SecretKeyID, w.Format)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if audit.Action == "" {
			return nil
		}
		audit.IntegrationID = integrationID
		return insertAudit(ctx, tx, audit)
	}))
}
