package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequestLog is one Qualtrics call of an integration: never a token, never a
// response body.
type RequestLog struct {
	At         time.Time
	SyncRunID  *int64
	Method     string
	Path       string
	Status     int
	DurationMS int
	RequestID  string
	ErrorCode  string
}

// InsertRequestLogs appends calls to an integration's request log.
func (s *Store) InsertRequestLogs(ctx context.Context, integrationID string, logs []RequestLog) error {
	if len(logs) == 0 {
		return nil
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"request_logs"},
		[]string{"integration_id", "sync_run_id", "at", "method", "path", "status", "duration_ms", "request_id", "error_code"},
		pgx.CopyFromSlice(len(logs), func(i int) ([]any, error) {
			l := logs[i]
			return []any{integrationID, l.SyncRunID, l.At, l.Method, l.Path, l.Status, l.DurationMS, l.RequestID, l.ErrorCode}, nil
		}))
	return mapErr("insert request logs", err)
}

// ListRequestLogs returns an integration's calls since a time, newest first.
func (s *Store) ListRequestLogs(ctx context.Context, integrationID string, since time.Time, limit int) ([]RequestLog, error) {
	if !ValidUUID(integrationID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, requestLogsSQL, integrationID, since, limit)
	if err != nil {
		return nil, mapErr("list request logs", err)
	}
	out, err := pgx.CollectRows(rows, scanRequestLog)
	return out, mapErr("list request logs", err)
}

const requestLogsSQL = `SELECT at, sync_run_id, method, path, status, duration_ms, request_id, error_code
	FROM request_logs WHERE integration_id = $1 AND at >= $2 ORDER BY at DESC, id DESC LIMIT $3`

func scanRequestLog(r pgx.CollectableRow) (RequestLog, error) {
	var l RequestLog
	err := r.Scan(&l.At, &l.SyncRunID, &l.Method, &l.Path, &l.Status, &l.DurationMS, &l.RequestID, &l.ErrorCode)
	return l, err
}
