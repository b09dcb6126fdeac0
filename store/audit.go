package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEvent records an admin change: who (a label or hash of the admin
// token, never the token), what, when.
type AuditEvent struct {
	ID            int64
	At            time.Time
	Actor         string
	Action        string
	IntegrationID string
	// IntegrationName is the integration's name when read ("" once it is
	// deleted and purged).
	IntegrationName string
	Details         map[string]any
}

func insertAudit(ctx context.Context, tx pgx.Tx, ev AuditEvent) error {
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	var integrationID any
	if ev.IntegrationID != "" {
		integrationID = ev.IntegrationID
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_events (actor, action, integration_id, details) VALUES ($1, $2, $3, $4)`,
		ev.Actor, ev.Action, integrationID, ev.Details)
	return err
}

// RecordAudit stores one audit event on its own.
func (s *Store) RecordAudit(ctx context.Context, ev AuditEvent) error {
	return mapErr("record audit", s.WithTx(ctx, func(tx pgx.Tx) error { return insertAudit(ctx, tx, ev) }))
}

// ListAuditEvents returns the newest events first, at most limit, before the
// id given (0 = from the newest).
func (s *Store) ListAuditEvents(ctx context.Context, beforeID int64, limit int) ([]AuditEvent, error) {
	return s.listAudit(ctx, "", beforeID, limit)
}

// ListIntegrationAuditEvents is ListAuditEvents for one integration's events.
func (s *Store) ListIntegrationAuditEvents(ctx context.Context, integrationID string, beforeID int64, limit int) ([]AuditEvent, error) {
	if !ValidUUID(integrationID) {
		return nil, nil
	}
	return s.listAudit(ctx, integrationID, beforeID, limit)
}

func (s *Store) listAudit(ctx context.Context, integrationID string, beforeID int64, limit int) ([]AuditEvent, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	var (
		rows pgx.Rows
		err  error
	)
	if integrationID == "" {
		rows, err = s.pool.Query(ctx, auditSQL, beforeID, limit)
	} else {
		rows, err = s.pool.Query(ctx, integrationAuditSQL, beforeID, limit, integrationID)
	}
	if err != nil {
		return nil, mapErr("list audit events", err)
	}
	out, err := pgx.CollectRows(rows, scanAuditEvent)
	return out, mapErr("list audit events", err)
}

const auditSQL = `SELECT a.id, a.at, a.actor, a.action, coalesce(a.integration_id::text, ''), a.details,
	coalesce(i.name, '') FROM audit_events a LEFT JOIN integrations i ON i.id = a.integration_id
	WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2`

const integrationAuditSQL = `SELECT id, at, actor, action, coalesce(integration_id::text, ''), details, ''
	FROM audit_events WHERE integration_id = $3 AND id < $1 ORDER BY integration_id, id DESC LIMIT $2`

func scanAuditEvent(r pgx.CollectableRow) (AuditEvent, error) {
	var ev AuditEvent
	var details []byte
	if err := r.Scan(&ev.ID, &ev.At, &ev.Actor, &ev.Action, &ev.IntegrationID, &details, &ev.IntegrationName); err != nil {
		return ev, err
	}
	return ev, json.Unmarshal(details, &ev.Details)
}
