package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ListBrandAdmins returns the emails of an integration's Brand Admins, sorted.
const brandAdminsSQL = `SELECT email FROM brand_admins WHERE integration_id = $1 ORDER BY email`

func (s *Store) ListBrandAdmins(ctx context.Context, integrationID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, brandAdminsSQL, integrationID)
	if err != nil {
		return nil, mapErr("list brand admins", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, mapErr("list brand admins", err)
}

// PutBrandAdmin makes email (already normalised) a Brand Admin of the
// integration; doing it twice is not an error.
func (s *Store) PutBrandAdmin(ctx context.Context, integrationID, email string, audit AuditEvent) error {
	return mapErr("put brand admin", s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO brand_admins (integration_id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING`, integrationID, email)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // already there: nothing changed, nothing to audit
		}
		audit.IntegrationID = integrationID
		return insertAudit(ctx, tx, audit)
	}))
}

// DeleteBrandAdmin removes email from the integration's Brand Admins; removing
// someone who is not one is not an error.
func (s *Store) DeleteBrandAdmin(ctx context.Context, integrationID, email string, audit AuditEvent) error {
	return mapErr("delete brand admin", s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM brand_admins WHERE integration_id = $1 AND email = $2`, integrationID, email)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		audit.IntegrationID = integrationID
		return insertAudit(ctx, tx, audit)
	}))
}
