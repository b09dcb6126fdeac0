package store

import (
	"context"
	"time"
)

// PurgeResult counts what Purge removed.
type PurgeResult struct {
	RequestLogs   int64
	Sessions      int64
	Notifications int64
}

// Purge deletes what has outlived its retention as of now: request logs after
// 24 hours, expired sessions, and notifications a month after they left the
// feed. Notifications stay that long because their dedupe keys are what stop
// a later sync from raising them again.
func (s *Store) Purge(ctx context.Context, now time.Time) (PurgeResult, error) {
	var r PurgeResult
	tag, err := s.pool.Exec(ctx, `DELETE FROM request_logs WHERE at < $1`, now.Add(-24*time.Hour))
	if err != nil {
		return r, mapErr("purge request logs", err)
	}
	r.RequestLogs = tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM sessions WHERE expiry < $1`, now)
	if err != nil {
		return r, mapErr("purge sessions", err)
	}
	r.Sessions = tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM notifications WHERE expires_at < $1`, now.Add(-30*24*time.Hour))
	if err != nil {
		return r, mapErr("purge notifications", err)
	}
	r.Notifications = tag.RowsAffected()
	return r, nil
}
