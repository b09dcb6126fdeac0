package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// The service's state as an operator watches it (metrics at scrape time):
// every statement reads an index or a small table, never a table
// that grows with the brands.

// outboxOldestSQL is each channel's oldest pending delivery: one probe of
// deliveries_pending_idx per channel.
const outboxOldestSQL = `SELECT c.channel, (SELECT min(d.created_at) FROM deliveries d
		WHERE d.channel = c.channel AND d.status = 'pending')
	FROM unnest($1::text[]) c(channel)`

// OutboxOldestPending returns, per channel, when its oldest pending delivery
// was created (absent: none pending).
func (s *Store) OutboxOldestPending(ctx context.Context) (map[microapps.Channel]time.Time, error) {
	rows, err := s.pool.Query(ctx, outboxOldestSQL, microapps.Channels)
	if err != nil {
		return nil, mapErr("outbox oldest pending", err)
	}
	out := map[microapps.Channel]time.Time{}
	var channel microapps.Channel
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&channel, &at}, func() error {
		if at != nil {
			out[channel] = *at
		}
		return nil
	})
	return out, mapErr("outbox oldest pending", err)
}

// IntegrationsByStatus counts the integrations (not deleted) by status.
func (s *Store) IntegrationsByStatus(ctx context.Context) (map[microapps.IntegrationStatus]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM integrations WHERE deleted_at IS NULL GROUP BY status`)
	if err != nil {
		return nil, mapErr("integrations by status", err)
	}
	out := map[microapps.IntegrationStatus]int64{}
	var status microapps.IntegrationStatus
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		out[status] = n
		return nil
	})
	return out, mapErr("integrations by status", err)
}
