package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// SyncOutcome is what a finished sync changes on its integration.
type SyncOutcome struct {
	IntegrationID string
	At            time.Time
	Succeeded     bool
	// FullSucceeded sets first_full_sync_at when it is still NULL, and
	// first_full_sync_started_at to StartedAt, when the run started.
	FullSucceeded bool
	StartedAt     time.Time
	// Next sync times; nil leaves the column as it is.
	NextFullSyncAt        *time.Time
	NextIncrementalSyncAt *time.Time
	// Unauthorized puts the integration in status 'error' with StatusMessage,
	// unless its secret changed meanwhile (SecretSealed is the one the sync used):
	// a token replaced during the run must not be marked broken.
	Unauthorized  bool
	SecretSealed  []byte
	StatusMessage string
	// BaseURL, when set, replaces the stored base URL (datacenter notice),
	// unless an admin changed it during the run: then the stored one is no
	// longer StartBaseURL, the base URL the sync started with, and it stays.
	// An empty StartBaseURL does not check (callers should set it).
	BaseURL      string
	StartBaseURL string
}

// RecordSyncOutcomeTx writes a finished sync's bookkeeping on its integration.
func RecordSyncOutcomeTx(ctx context.Context, tx pgx.Tx, o SyncOutcome) error {
	_, err := tx.Exec(ctx, `UPDATE integrations SET
		last_sync_at = $2,
		last_success_at = CASE WHEN $3 THEN $2 ELSE last_success_at END,
		first_full_sync_at = CASE WHEN $4 THEN coalesce(first_full_sync_at, $2) ELSE first_full_sync_at END,
		first_full_sync_started_at = CASE WHEN $4 AND first_full_sync_at IS NULL THEN coalesce($12, $2)
			ELSE first_full_sync_started_at END,
		next_full_sync_at = coalesce($5, next_full_sync_at),
		next_incremental_sync_at = coalesce($6, next_incremental_sync_at),
		status = CASE WHEN $7 AND secret_sealed = $8 THEN 'error'
			ELSE status END,
		status_message = CASE WHEN $7 AND secret_sealed = $8 THEN $9
			WHEN $3 AND status = 'active' THEN '' ELSE status_message END,
		base_url = CASE WHEN $10 <> '' AND ($11 = '' OR base_url = $11) THEN $10 ELSE base_url END,
		updated_at = CASE WHEN ($10 <> '' AND ($11 = '' OR base_url = $11)) OR ($7 AND secret_sealed = $8) THEN $2 ELSE updated_at END
		WHERE id = $1`,
		o.IntegrationID, o.At, o.Succeeded, o.FullSucceeded, o.NextFullSyncAt, o.NextIncrementalSyncAt,
		o.Unauthorized, o.SecretSealed, o.StatusMessage, o.BaseURL, o.StartBaseURL, timeArg(o.StartedAt))
	return mapErr("record sync outcome", err)
}

// DueIntegrations returns the active integrations with a sync due at now
// (a next_*_sync_at in the past or never set) and no sync queued or running.
// Which kind is due, and whether a full sync may start now, is the caller's
// decision.
func (s *Store) DueIntegrations(ctx context.Context, now time.Time) ([]Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations i
		WHERE status = 'active' AND deleted_at IS NULL
		AND (next_full_sync_at IS NULL OR next_full_sync_at <= $1
			OR next_incremental_sync_at IS NULL OR next_incremental_sync_at <= $1)
		AND NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.integration_id = i.id AND r.status IN ('queued', 'running'))
		ORDER BY coalesce(least(next_full_sync_at, next_incremental_sync_at), created_at), id`, now)
	if err != nil {
		return nil, mapErr("due integrations", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Integration, error) { return scanIntegration(r) })
	return out, mapErr("due integrations", err)
}

// SetSyncRunKind changes the kind of a run that has not finished, e.g. an
// incremental asked for before the first full sync, which runs as a full one.
func (s *Store) SetSyncRunKind(ctx context.Context, integrationID string, runID int64, kind microapps.SyncKind) error {
	_, err := s.pool.Exec(ctx, `UPDATE sync_runs SET kind = $3 WHERE integration_id = $1 AND id = $2
		AND status IN ('queued', 'running')`, integrationID, runID, kind)
	return mapErr("set sync run kind", err)
}

// FailOrphanSyncRuns fails queued or running runs whose River job has
// finished without finishing them (cancelled, discarded, deleted), or that
// never got a job within grace: each would block its integration's syncs
// forever through the one-active-run index. It reads River's job table.
func (s *Store) FailOrphanSyncRuns(ctx context.Context, now time.Time, grace time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sync_runs r SET status = 'failed', finished_at = $1,
		error = 'the job working this run ended without finishing it'
		WHERE r.status IN ('queued', 'running') AND r.queued_at < $2
		AND (r.river_job_id IS NULL OR NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = r.river_job_id
			AND j.state NOT IN ('completed', 'cancelled', 'discarded')))`, now, now.Add(-grace))
	if err != nil {
		return 0, mapErr("fail orphan sync runs", err)
	}
	return tag.RowsAffected(), nil
}
