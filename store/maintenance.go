package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention: what a page, the audit of a sync or an operator still needs, no longer.
const (
	RequestLogRetention     = 24 * time.Hour
	NotificationRetention   = 30 * 24 * time.Hour // after the notification left the feed; deliveries go with it
	SyncRunRetention        = 30 * 24 * time.Hour
	SyncRunsKept            = 20 // an integration's latest runs are kept, however old
	AppliedEventRetention   = 7 * 24 * time.Hour
	PendingEventRetention   = 24 * time.Hour
	SoftDeletedRetention    = 30 * 24 * time.Hour // recipients, distributions and surveys marked deleted
	StatsFullResolutionDays = 7                   // older snapshots are thinned to the last of each day
)

// PurgeBatch is how many rows one purge statement deletes: each statement is
// its own short transaction, repeated until nothing is left, so a purge never
// holds locks for long, never hits a statement timeout and never rolls back
// all it did.
var PurgeBatch = 5000

// purgeNotificationsSQL deletes a batch of notifications that left the feed
// long ago; the cascade finds their deliveries by deliveries_notification_idx.
const purgeNotificationsSQL = `DELETE FROM notifications WHERE ctid = ANY (ARRAY (
	SELECT ctid FROM notifications WHERE expires_at < $2 ORDER BY expires_at LIMIT $1))`

// PurgeResult counts what Purge removed, by table.
type PurgeResult struct {
	RequestLogs   int64
	Sessions      int64
	Notifications int64 // their deliveries go with them (ON DELETE CASCADE, indexed)
	SyncRuns      int64
	Events        int64
	Recipients    int64 // soft-deleted long ago, or of distributions and surveys deleted long ago
	Distributions int64
	Surveys       int64
	StaleResumes  int64 // failed reads' kept pages no run came back for (ResumeRetention)
	// Analyzed lists the tables analyzed because the purge removed a large
	// share of their rows.
	Analyzed []string
}

// Rows is every row purged.
func (r PurgeResult) Rows() int64 {
	return r.RequestLogs + r.Sessions + r.Notifications + r.SyncRuns + r.Events + r.Recipients + r.Distributions + r.Surveys + r.StaleResumes
}

// ByTable is the rows purged per table, for metrics.
func (r PurgeResult) ByTable() map[string]int64 {
	return map[string]int64{"request_logs": r.RequestLogs, "sessions": r.Sessions, "notifications": r.Notifications,
		"sync_runs": r.SyncRuns, "qualtrics_events": r.Events, "recipients": r.Recipients,
		"distributions": r.Distributions, "surveys": r.Surveys, "sync_resumes": r.StaleResumes}
}

// batched runs sql (a DELETE of at most $1 rows; args follow) until it
// deletes fewer than a batch, and returns the rows deleted. The statements
// pick their batch by index and delete it by ctid (a TID scan), so the
// planner has no way to turn a batch into a scan of the whole table.
func (s *Store) batched(ctx context.Context, op, sql string, args ...any) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, sql, append([]any{PurgeBatch}, args...)...)
		if err != nil {
			return total, mapErr(op, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(PurgeBatch) {
			return total, nil
		}
	}
}

// Purge deletes what has outlived its retention as of now, in batches:
// request logs after 24 hours, expired sessions, notifications a month after
// they left the feed (their dedupe keys are what stop a later sync from
// raising them again) with their deliveries, sync runs after 30 days (each
// integration's latest 20 kept), applied events after a week and pending ones
// after a day, and what syncs marked deleted 30 days ago. Tables that lost a
// large share of their rows are analyzed, so the planner does not work from
// statistics of a table that no longer exists.
func (s *Store) Purge(ctx context.Context, now time.Time) (PurgeResult, error) {
	var r PurgeResult
	var err error
	steps := []struct {
		n     *int64
		table string
		op    string
		sql   string
		args  []any
	}{
		{&r.RequestLogs, "request_logs", "purge request logs", `DELETE FROM request_logs WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM request_logs WHERE at < $2 ORDER BY at LIMIT $1))`, []any{now.Add(-RequestLogRetention)}},
		{&r.Sessions, "sessions", "purge sessions", `DELETE FROM sessions WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM sessions WHERE expiry < $2 ORDER BY expiry LIMIT $1))`, []any{now}},
		{&r.Notifications, "notifications", "purge notifications", purgeNotificationsSQL, []any{now.Add(-NotificationRetention)}},
		{&r.SyncRuns, "sync_runs", "purge sync runs", purgeSyncRunsSQL, []any{now.Add(-SyncRunRetention), SyncRunsKept}},
		{&r.Events, "qualtrics_events", "purge applied events", `DELETE FROM qualtrics_events WHERE ctid = ANY (ARRAY (
			SELECT e.ctid FROM integrations i CROSS JOIN LATERAL (
				SELECT ctid FROM qualtrics_events e WHERE e.integration_id = i.id AND e.applied_at IS NOT NULL AND e.applied_at < $2
				LIMIT $1) e
			LIMIT $1))`, []any{now.Add(-AppliedEventRetention)}},
		{&r.Events, "qualtrics_events", "purge pending events", `DELETE FROM qualtrics_events WHERE ctid = ANY (ARRAY (
			SELECT e.ctid FROM integrations i CROSS JOIN LATERAL (
				SELECT ctid FROM qualtrics_events e WHERE e.integration_id = i.id AND e.applied_at IS NULL AND e.received_at < $2
				LIMIT $1) e
			LIMIT $1))`, []any{now.Add(-PendingEventRetention)}},
	}
	touched := map[string]int64{}
	for _, st := range steps {
		n, err := s.batched(ctx, st.op, st.sql, st.args...)
		*st.n += n
		touched[st.table] += n
		if err != nil {
			return r, err
		}
	}
	// Pages kept for a failed read's next run that no run came back for.
	if r.StaleResumes, err = s.DropStaleResumes(ctx, now.Add(-ResumeRetention)); err != nil {
		return r, err
	}
	// Distributions (or whole surveys) marked deleted 30 days ago go with
	// their recipients and snapshots, a distribution at a time.
	if err = s.purgeDeletedDistributions(ctx, now.Add(-SoftDeletedRetention), &r); err != nil {
		return r, err
	}
	touched["recipients"] += r.Recipients
	touched["distributions"] += r.Distributions
	r.Analyzed, err = s.analyzeLargeShare(ctx, touched)
	return r, err
}

// purgeDeletedDistributionsSQL picks up to 100 distributions marked deleted
// before $1, or whose survey was: two index reads (the partial indexes on
// deleted_at of both tables), not one OR across a join that scans both.
// Distributions in the order of their index: a plan that reads it in order
// and stops at 100 is the cheapest whatever the statistics say (a scan of
// the table is what statistics from before the data would otherwise pick).
const purgeDeletedDistributionsSQL = `SELECT integration_id::text, qualtrics_id FROM (
		(SELECT d.integration_id, d.qualtrics_id FROM distributions d WHERE d.deleted_at < $1 ORDER BY d.deleted_at LIMIT 100)
		UNION
		(SELECT d.integration_id, d.qualtrics_id FROM surveys s CROSS JOIN LATERAL (
			SELECT d.integration_id, d.qualtrics_id FROM distributions d
			WHERE d.integration_id = s.integration_id AND d.survey_id = s.qualtrics_id LIMIT 100) d
			WHERE s.deleted_at < $1 LIMIT 100)
	) x LIMIT 100`

// purgeSyncRunsSQL deletes a batch of finished runs older than $2, each
// integration's latest $3 kept.
const purgeSyncRunsSQL = `DELETE FROM sync_runs WHERE ctid = ANY (ARRAY (
			SELECT r.ctid FROM sync_runs r
			WHERE r.finished_at < $2 AND r.status IN ('succeeded', 'failed')
				AND r.id < (SELECT min(k.id) FROM (SELECT x.id FROM sync_runs x WHERE x.integration_id = r.integration_id
					ORDER BY x.id DESC LIMIT $3) k)
			ORDER BY r.id LIMIT $1))`

func (s *Store) purgeDeletedDistributions(ctx context.Context, before time.Time, r *PurgeResult) error {
	for {
		rows, err := s.pool.Query(ctx, purgeDeletedDistributionsSQL, before)
		if err != nil {
			return mapErr("purge deleted distributions", err)
		}
		type dist struct{ integration, id string }
		ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dist, error) {
			var d dist
			return d, row.Scan(&d.integration, &d.id)
		})
		if err != nil {
			return mapErr("purge deleted distributions", err)
		}
		for _, d := range ds {
			n, err := s.removeDistribution(ctx, d.integration, d.id)
			r.Recipients += n
			if err != nil {
				return err
			}
			r.Distributions++
		}
		if len(ds) < 100 {
			break
		}
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM surveys s WHERE s.deleted_at < $1
		AND NOT EXISTS (SELECT 1 FROM distributions d WHERE d.integration_id = s.integration_id AND d.survey_id = s.qualtrics_id)`, before)
	if err != nil {
		return mapErr("purge surveys", err)
	}
	r.Surveys += tag.RowsAffected()
	return nil
}

// AnalyzeShare is the share of a table's rows whose removal (or writing)
// makes its statistics stale enough to ANALYZE at once rather than wait for
// autovacuum (off on some machines, late on others).
const AnalyzeShare = 0.10

// analyzeLargeShare runs ANALYZE on each table that lost at least
// AnalyzeShare of its rows (by the planner's own estimate) and returns the
// tables analyzed.
func (s *Store) analyzeLargeShare(ctx context.Context, removed map[string]int64) ([]string, error) {
	var done []string
	for table, n := range removed {
		if n == 0 {
			continue
		}
		var est float64
		if err := s.pool.QueryRow(ctx, `SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass($1)`, table).Scan(&est); err != nil {
			return done, mapErr("analyze "+table, err)
		}
		if float64(n) < AnalyzeShare*(est+float64(n)) && est > 0 {
			continue
		}
		if _, err := s.pool.Exec(ctx, `ANALYZE `+pgx.Identifier{table}.Sanitize()); err != nil {
			return done, mapErr("analyze "+table, err)
		}
		done = append(done, table)
	}
	return done, nil
}

// AnalyzeIfChanged analyzes each of tables whose rows changed since its last
// ANALYZE by at least AnalyzeShare of its estimated rows (or that was never
// analyzed and has rows), and returns the tables analyzed and how long it
// took. A sync calls it once at its end; bulk deletes use the same rule. One
// statement finds the stale tables (the usual run has none); a table another
// session is analyzing right now (many syncs ending at once, on several
// replicas) is left to it: one fresh sample is enough.
func (s *Store) AnalyzeIfChanged(ctx context.Context, tables ...string) ([]string, time.Duration, error) {
	const staleSQL = `SELECT t.relname::text FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
		WHERE t.relid = ANY (ARRAY (SELECT to_regclass(n) FROM unnest($1::text[]) n))
			AND ((t.last_analyze IS NULL AND t.last_autoanalyze IS NULL AND t.n_mod_since_analyze > 0)
				OR t.n_mod_since_analyze >= $2 * greatest(c.reltuples, 0))
		ORDER BY 1`
	start := time.Now()
	rows, err := s.pool.Query(ctx, staleSQL, tables, AnalyzeShare)
	if err != nil {
		return nil, time.Since(start), mapErr("analyze changed tables", err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, time.Since(start), mapErr("analyze changed tables", err)
	}
	var done []string
	for _, table := range stale {
		analyzed := false
		err := s.WithTx(ctx, func(tx pgx.Tx) error {
			var mine, still bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('microapps.analyze.' || $1))`, table).Scan(&mine); err != nil || !mine {
				return err
			}
			// Still stale? Another session may have just analyzed it.
			if err := tx.QueryRow(ctx, `SELECT EXISTS (`+staleSQL+`)`, []string{table}, AnalyzeShare).Scan(&still); err != nil || !still {
				return err
			}
			analyzed = true
			_, err := tx.Exec(ctx, `ANALYZE `+pgx.Identifier{table}.Sanitize())
			return err
		})
		if err != nil {
			return done, time.Since(start), mapErr("analyze "+table, err)
		}
		if analyzed {
			done = append(done, table)
		}
	}
	return done, time.Since(start), nil
}

// removeDistribution deletes a distribution with its recipients (in
// batches) and snapshots, and returns the recipients deleted.
func (s *Store) removeDistribution(ctx context.Context, integrationID, distributionID string) (int64, error) {
	n, err := s.batched(ctx, "remove recipients", `DELETE FROM recipients WHERE integration_id = $2 AND ctid = ANY (ARRAY (
		SELECT ctid FROM recipients WHERE integration_id = $2 AND distribution_id = $3 LIMIT $1))`, integrationID, distributionID)
	if err != nil {
		return n, err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM distribution_stats WHERE integration_id = $1 AND distribution_id = $2`, integrationID, distributionID); err != nil {
		return n, mapErr("remove distribution stats", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM distributions WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, distributionID); err != nil {
		return n, mapErr("remove distribution", err)
	}
	return n, nil
}

// RemovalResult is what RemoveDeletedIntegration removed.
type RemovalResult struct {
	Recipients    int64
	Distributions int64
	Rows          int64 // every row, recipients included
	Analyzed      []string
}

// DeletedIntegrationIDs lists the integrations deleted through the API
// whose data is still being removed.
func (s *Store) DeletedIntegrationIDs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM integrations WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id`)
	if err != nil {
		return nil, mapErr("deleted integrations", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapErr("deleted integrations", err)
}

// RemoveDeletedIntegration removes the data of an integration that
// DeleteIntegration marked deleted, in batches of short transactions, then
// the integration's row. It can be interrupted and run again: it continues.
// An integration that is not marked deleted is left alone (ErrNotFound).
func (s *Store) RemoveDeletedIntegration(ctx context.Context, id string) (RemovalResult, error) {
	var r RemovalResult
	if !ValidUUID(id) {
		return r, fmt.Errorf("store: remove integration: %w", ErrNotFound)
	}
	var marked bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE id = $1 AND deleted_at IS NOT NULL)`, id).Scan(&marked); err != nil {
		return r, mapErr("remove integration", err)
	}
	if !marked {
		return r, fmt.Errorf("store: remove integration: %w", ErrNotFound)
	}
	touched := map[string]int64{}
	for {
		rows, err := s.pool.Query(ctx, `SELECT qualtrics_id FROM distributions WHERE integration_id = $1 LIMIT 100`, id)
		if err != nil {
			return r, mapErr("remove integration", err)
		}
		ds, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return r, mapErr("remove integration", err)
		}
		for _, d := range ds {
			n, err := s.removeDistribution(ctx, id, d)
			r.Recipients += n
			if err != nil {
				return r, err
			}
			r.Distributions++
		}
		if len(ds) < 100 {
			break
		}
	}
	touched["recipients"], touched["distributions"] = r.Recipients, r.Distributions
	r.Rows = r.Recipients + r.Distributions
	for _, st := range []struct{ table, sql string }{
		// Recipients of distributions no longer listed (none normally).
		{"recipients", `DELETE FROM recipients WHERE integration_id = $2 AND ctid = ANY (ARRAY (
			SELECT ctid FROM recipients WHERE integration_id = $2 LIMIT $1))`},
		{"distribution_stats", `DELETE FROM distribution_stats WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM distribution_stats WHERE integration_id = $2 LIMIT $1))`},
		{"surveys", `DELETE FROM surveys WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM surveys WHERE integration_id = $2 LIMIT $1))`},
		{"deliveries", `DELETE FROM deliveries WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM deliveries WHERE integration_id = $2 ORDER BY id DESC LIMIT $1))`},
		{"qualtrics_events", `DELETE FROM qualtrics_events WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM qualtrics_events WHERE integration_id = $2 LIMIT $1))`},
		{"request_logs", `DELETE FROM request_logs WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM request_logs WHERE integration_id = $2 ORDER BY at DESC LIMIT $1))`},
		{"sync_runs", `DELETE FROM sync_runs WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM sync_runs WHERE integration_id = $2 ORDER BY id DESC LIMIT $1))`},
	} {
		n, err := s.batched(ctx, "remove integration "+st.table, st.sql, id)
		touched[st.table] += n
		r.Rows += n
		if err != nil {
			return r, err
		}
	}
	// Notifications go with the row (ON DELETE CASCADE): by then their
	// deliveries are gone, and it is one statement per integration.
	var notifications int64
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE integration_id = $1`, id).Scan(&notifications); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM integrations WHERE id = $1 AND deleted_at IS NOT NULL`, id)
		return err
	})
	if err != nil {
		return r, mapErr("remove integration", err)
	}
	touched["notifications"] += notifications
	r.Rows += notifications + 1
	r.Analyzed, err = s.analyzeLargeShare(ctx, touched)
	return r, err
}
