package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// IntegrationOverview is everything an integration's console page shows.
type IntegrationOverview struct {
	Integration Integration
	Webhook     Webhook
	Defaults    NotificationDefaults
	Runs        []SyncRun // newest first
	BrandAdmins []string
	Logs        []RequestLog // newest first, since OverviewQuery.LogsSince
	Deliveries  []Delivery   // newest first
	Audit       []AuditEvent // newest first, before OverviewQuery.AuditBefore
}

// OverviewQuery bounds each list of an IntegrationOverview.
type OverviewQuery struct {
	Runs, Logs, Deliveries, Audit int
	LogsSince                     time.Time
	AuditBefore                   int64 // 0: from the newest
}

// IntegrationOverview reads an integration's console page in one round trip
// (ErrNotFound when it does not exist). Each list is an index range of its
// own limit.
func (s *Store) IntegrationOverview(ctx context.Context, id string, q OverviewQuery) (IntegrationOverview, error) {
	var o IntegrationOverview
	if !ValidUUID(id) {
		return o, mapErr("integration overview", pgx.ErrNoRows)
	}
	if q.AuditBefore <= 0 {
		q.AuditBefore = 1<<63 - 1
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+integrationColumns+`, webhook_url, webhook_secret_sealed, webhook_secret_key_id, webhook_format,
		notification_language, notification_time_zone FROM integrations WHERE id = $1 AND deleted_at IS NULL`, id).
		QueryRow(func(row pgx.Row) error {
			return scanIntegrationInto(row, &o.Integration, &o.Webhook.URL, &o.Webhook.SecretSealed, &o.Webhook.SecretKeyID,
				&o.Webhook.Format, &o.Defaults.Language, &o.Defaults.TimeZone)
		})
	b.Queue(syncRunsSQL, id, q.Runs).Query(func(rows pgx.Rows) (err error) {
		o.Runs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SyncRun, error) { return scanSyncRun(r) })
		return err
	})
	b.Queue(brandAdminsSQL, id).Query(func(rows pgx.Rows) (err error) {
		o.BrandAdmins, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	b.Queue(requestLogsSQL, id, q.LogsSince, q.Logs).Query(func(rows pgx.Rows) (err error) {
		o.Logs, err = pgx.CollectRows(rows, scanRequestLog)
		return err
	})
	b.Queue(deliveriesSQL, id, q.Deliveries).Query(func(rows pgx.Rows) (err error) {
		o.Deliveries, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
		return err
	})
	b.Queue(integrationAuditSQL, q.AuditBefore, q.Audit, id).Query(func(rows pgx.Rows) (err error) {
		o.Audit, err = pgx.CollectRows(rows, scanAuditEvent)
		return err
	})
	return o, mapErr("integration overview", s.pool.SendBatch(ctx, b).Close())
}
