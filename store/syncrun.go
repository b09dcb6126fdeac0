package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// SyncRun is one sync of one integration.
type SyncRun struct {
	ID                 int64
	IntegrationID      string
	Kind               microapps.SyncKind
	Status             microapps.RunStatus
	Trigger            microapps.SyncTrigger
	RiverJobID         *int64
	QueuedAt           time.Time
	StartedAt          *time.Time
	FinishedAt         *time.Time
	APICalls           int
	APICallsByEndpoint map[string]int
	Surveys            int
	Distributions      int
	Recipients         int
	Notifications      int
	Warnings           []string
	Changes            []Change
	Error              string
	Progress           SyncProgress
	// BaseURL is the integration's base URL when the run started, so a
	// datacenter switch it advises never overwrites an admin's change.
	BaseURL string
	// OverrideVeto lets the run remove what it finds gone however much it
	// is; Vetoed says the run removed nothing because of the veto rule, and
	// Removals what it would have removed (or removed).
	OverrideVeto bool
	Vetoed       bool
	Removals     Removals
}

// Removals counts what a run removes, by kind: a removed survey counts its
// distributions and recipients, a removed distribution its recipients.
type Removals struct {
	Surveys       int64 `json:"surveys"`
	Distributions int64 `json:"distributions"`
	Recipients    int64 `json:"recipients"`
}

// SyncProgress is where a run stands in its plan of units.
type SyncProgress struct {
	Phase       string // "surveys" (reading the survey listing), "units", "finish"
	UnitsTotal  int    // surveys and distributions planned so far
	UnitsDone   int
	UnitsFailed int
	Jobs        int // River jobs (slices) that have worked the run
}

// Change is one thing a sync found different from what was stored, handed to
// the notification rules.
type Change struct {
	Kind           string `json:"kind"` // e.g. "recipient_delivered", "distribution_new", "survey_deactivated"
	SurveyID       string `json:"surveyId,omitempty"`
	DistributionID string `json:"distributionId,omitempty"`
	ContactID      string `json:"contactId,omitempty"`
}

const syncRunColumns = `id, integration_id, kind, status, trigger, river_job_id, queued_at, started_at, finished_at,
	api_calls, api_calls_by_endpoint, surveys, distributions, recipients, notifications, warnings, changes, error,
	phase, units_total, units_done, units_failed, jobs, base_url, override_veto, vetoed, removals`

func scanSyncRun(row pgx.Row) (SyncRun, error) {
	var r SyncRun
	var byEndpoint, warnings, changes, removals []byte
	err := row.Scan(&r.ID, &r.IntegrationID, &r.Kind, &r.Status, &r.Trigger, &r.RiverJobID, &r.QueuedAt, &r.StartedAt, &r.FinishedAt,
		&r.APICalls, &byEndpoint, &r.Surveys, &r.Distributions, &r.Recipients, &r.Notifications, &warnings, &changes, &r.Error,
		&r.Progress.Phase, &r.Progress.UnitsTotal, &r.Progress.UnitsDone, &r.Progress.UnitsFailed, &r.Progress.Jobs, &r.BaseURL,
		&r.OverrideVeto, &r.Vetoed, &removals)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(removals, &r.Removals); err != nil {
		return r, err
	}
	r.APICallsByEndpoint = map[string]int{}
	if err := json.Unmarshal(byEndpoint, &r.APICallsByEndpoint); err != nil {
		return r, err
	}
	if err := json.Unmarshal(warnings, &r.Warnings); err != nil {
		return r, err
	}
	if err := json.Unmarshal(changes, &r.Changes); err != nil {
		return r, err
	}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	return r, nil
}

// QueueSyncRunTx records a queued run unless the integration already has a
// queued or running one, which it returns instead with created = false. The
// partial unique index makes this safe across replicas.
func (s *Store) QueueSyncRunTx(ctx context.Context, tx pgx.Tx, integrationID string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (SyncRun, bool, error) {
	run, err := scanSyncRun(tx.QueryRow(ctx, `INSERT INTO sync_runs (integration_id, kind, trigger) VALUES ($1, $2, $3)
		ON CONFLICT (integration_id) WHERE status IN ('queued', 'running') DO NOTHING
		RETURNING `+syncRunColumns, integrationID, kind, trigger))
	if err == nil {
		return run, true, nil
	}
	if err != pgx.ErrNoRows {
		return run, false, mapErr("queue sync run", err)
	}
	run, err = scanSyncRun(tx.QueryRow(ctx, `SELECT `+syncRunColumns+` FROM sync_runs
		WHERE integration_id = $1 AND status IN ('queued', 'running')`, integrationID))
	return run, false, mapErr("queue sync run", err)
}

// SetSyncRunJobTx links a run to the River job that works it.
func (s *Store) SetSyncRunJobTx(ctx context.Context, tx pgx.Tx, runID, jobID int64) error {
	_, err := tx.Exec(ctx, `UPDATE sync_runs SET river_job_id = $2 WHERE id = $1`, runID, jobID)
	return mapErr("set sync run job", err)
}

// GetSyncRun returns one run of one integration.
func (s *Store) GetSyncRun(ctx context.Context, integrationID string, id int64) (SyncRun, error) {
	if !ValidUUID(integrationID) {
		return SyncRun{}, mapErr("get sync run", pgx.ErrNoRows)
	}
	run, err := scanSyncRun(s.pool.QueryRow(ctx, `SELECT `+syncRunColumns+` FROM sync_runs WHERE integration_id = $1 AND id = $2`, integrationID, id))
	return run, mapErr("get sync run", err)
}

const syncRunsSQL = `SELECT ` + syncRunColumns + ` FROM sync_runs WHERE integration_id = $1 ORDER BY id DESC LIMIT $2`

// ListSyncRuns returns an integration's runs, newest first.
func (s *Store) ListSyncRuns(ctx context.Context, integrationID string, limit int) ([]SyncRun, error) {
	if !ValidUUID(integrationID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, syncRunsSQL, integrationID, limit)
	if err != nil {
		return nil, mapErr("list sync runs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SyncRun, error) { return scanSyncRun(r) })
	return out, mapErr("list sync runs", err)
}

// StartSyncRun marks a queued run running. It returns ErrNotFound when the
// run is gone (its integration was deleted) or already finished.
func (s *Store) StartSyncRun(ctx context.Context, integrationID string, id int64, now time.Time) (SyncRun, error) {
	run, err := scanSyncRun(s.pool.QueryRow(ctx, `UPDATE sync_runs SET status = 'running', started_at = coalesce(started_at, $3)
		WHERE integration_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING `+syncRunColumns, integrationID, id, now))
	return run, mapErr("start sync run", err)
}

// FinishSyncRun stores a run's outcome and figures.
func (s *Store) FinishSyncRun(ctx context.Context, run SyncRun) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error { return s.FinishSyncRunTx(ctx, tx, run) })
}

// FinishSyncRunTx is FinishSyncRun inside the caller's transaction.
func (s *Store) FinishSyncRunTx(ctx context.Context, tx pgx.Tx, run SyncRun) error {
	run.fillLists()
	// Only a queued or running run is finished: one already failed (as an
	// orphan whose job ended, say) keeps its outcome, whatever its job says later.
	tag, err := tx.Exec(ctx, `UPDATE sync_runs SET status = $3, finished_at = $4, api_calls = $5, api_calls_by_endpoint = $6,
		surveys = $7, distributions = $8, recipients = $9, notifications = $10, warnings = $11, changes = $12, error = $13
		WHERE integration_id = $1 AND id = $2 AND status IN ('queued', 'running')`,
		run.IntegrationID, run.ID, run.Status, run.FinishedAt, run.APICalls, run.APICallsByEndpoint,
		run.Surveys, run.Distributions, run.Recipients, run.Notifications, run.Warnings, run.Changes, run.Error)
	if err != nil {
		return mapErr("finish sync run", err)
	}
	if tag.RowsAffected() == 0 {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM sync_runs WHERE integration_id = $1 AND id = $2`, run.IntegrationID, run.ID).Scan(&status)
		if err != nil {
			return mapErr("finish sync run", err)
		}
		return fmt.Errorf("store: finish sync run %d: it is %s already: %w", run.ID, status, ErrNotFound)
	}
	return nil
}

// fillLists makes the run's nil maps and lists empty ones, as the columns
// hold them (never JSON null).
func (r *SyncRun) fillLists() {
	if r.APICallsByEndpoint == nil {
		r.APICallsByEndpoint = map[string]int{}
	}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	if r.Changes == nil {
		r.Changes = []Change{}
	}
}

// FailedRunsInARow counts the integration's latest finished runs that failed
// in a row (at most 10), for the backoff of the next attempt.
func (s *Store) FailedRunsInARow(ctx context.Context, integrationID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT status, bool_and(status = 'failed') OVER (ORDER BY id DESC) AS streak
		FROM (SELECT id, status FROM sync_runs WHERE integration_id = $1 AND status IN ('succeeded', 'failed')
			ORDER BY id DESC LIMIT 10) r) x WHERE streak`, integrationID).Scan(&n)
	return n, mapErr("failed runs in a row", err)
}

// SetSyncRunOverrideVeto lets a queued or running full run remove what it
// finds gone, whatever the veto rule says (a run that decided already keeps
// its decision).
func (s *Store) SetSyncRunOverrideVeto(ctx context.Context, integrationID string, runID int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sync_runs SET override_veto = true
		WHERE integration_id = $1 AND id = $2 AND kind = 'full' AND status IN ('queued', 'running')`, integrationID, runID)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return mapErr("set override veto", err)
}

// removedRecipientsSQL counts the live recipients a run would remove: those
// its merges found unlisted ($2) and those of the distributions it removes
// ($3): two index reads, bounded by what is removed.
const removedRecipientsSQL = `SELECT count(*) FROM (
	SELECT 1 FROM recipients WHERE integration_id = $1 AND unlisted_run_id = $2 AND deleted_at IS NULL
	UNION ALL
	SELECT 1 FROM recipients WHERE integration_id = $1 AND distribution_id = ANY($3) AND deleted_at IS NULL
		AND unlisted_run_id IS DISTINCT FROM $2) x`

// liveRowsUpToSQL counts an integration's live rows of table, up to $2, in
// the order of its primary key: the planner walks the integration's part of
// the index and stops at $2, instead of a scan of the table until it has
// met $2 of them.
func liveRowsUpToSQL(table string) string {
	key := "integration_id, qualtrics_id"
	if table == "recipients" {
		key = "integration_id, distribution_id, contact_id"
	}
	return `SELECT count(*) FROM (SELECT 1 FROM ` + table + ` WHERE integration_id = $1 AND deleted_at IS NULL
		ORDER BY ` + key + ` LIMIT $2) x`
}

// unseenSurveysSQL lists the integration's surveys a full run's listing did
// not hold: it reads the integration's live surveys, which the run listed.
const unseenSurveysSQL = `SELECT qualtrics_id FROM surveys
	WHERE integration_id = $1 AND deleted_at IS NULL AND seen_run_id IS DISTINCT FROM $2`

// unseenDistributionsSQL lists the distributions a full run removes: those of
// the surveys it removes ($3), and those a survey's complete listing in this
// run no longer held. It reads the distributions of the surveys in $3 and of
// the run's listed surveys, by survey (distributions_survey_idx), never the
// integration's years of past distributions.
const unseenDistributionsSQL = `SELECT d.qualtrics_id FROM distributions d
	WHERE d.integration_id = $1 AND d.deleted_at IS NULL AND d.survey_id = ANY($3)
	UNION
	SELECT d.qualtrics_id FROM sync_units u JOIN distributions d ON d.integration_id = $1 AND d.survey_id = u.survey_id
	WHERE u.run_id = $2 AND u.kind = 'survey' AND u.status = 'done' AND u.listed
		AND d.deleted_at IS NULL AND d.seen_run_id IS DISTINCT FROM $2`

// DecideRemovals takes a run's veto decision, once, at its end, and applies
// the removals it allows in the same transaction: the surveys a full run did
// not see in the complete listing, the distributions it did not see in the
// complete listings of their surveys (and those of removed surveys), and the
// recipients its merges found unlisted. The run is vetoed, and removes
// nothing, when for any kind it would remove more than the rule's percent of
// the integration's live rows of that kind and more than its minimum rows,
// unless the run overrides the veto. A run decided already (a slice killed
// after the decision) returns its decision unchanged. The work follows what
// would be removed: the live rows are counted only as far as the rule needs.
func (s *Store) DecideRemovals(ctx context.Context, integrationID string, runID int64, full bool, rule microapps.VetoRule, now time.Time) (Removals, bool, error) {
	var (
		would  Removals
		vetoed bool
	)
	if rule.MaxDeletePercent <= 0 {
		rule = microapps.DefaultVetoRule
	}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var decided, override bool
		var removals []byte
		err := tx.QueryRow(ctx, `SELECT veto_decided, vetoed, override_veto, removals FROM sync_runs
			WHERE id = $1 AND integration_id = $2 AND status = 'running' FOR UPDATE`, runID, integrationID).
			Scan(&decided, &vetoed, &override, &removals)
		if err != nil {
			return err
		}
		if decided {
			return json.Unmarshal(removals, &would)
		}
		var surveys, dists []string
		if full {
			rows, err := tx.Query(ctx, unseenSurveysSQL, integrationID, runID)
			if err != nil {
				return err
			}
			if surveys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, unseenDistributionsSQL, integrationID, runID, surveys)
			if err != nil {
				return err
			}
			if dists, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		would.Surveys, would.Distributions = int64(len(surveys)), int64(len(dists))
		if err := tx.QueryRow(ctx, removedRecipientsSQL, integrationID, runID, dists).Scan(&would.Recipients); err != nil {
			return err
		}
		// Vetoed when a kind loses more than the percent of its live rows:
		// live rows are counted up to what decides it (removed × 100 / percent).
		over := func(removed int64, table string) (bool, error) {
			if removed <= int64(rule.MinRows) || rule.MaxDeletePercent >= 100 {
				return false, nil
			}
			need := (removed*100 + int64(rule.MaxDeletePercent) - 1) / int64(rule.MaxDeletePercent)
			var live int64
			if err := tx.QueryRow(ctx, liveRowsUpToSQL(table), integrationID, need).Scan(&live); err != nil {
				return false, err
			}
			return removed*100 > int64(rule.MaxDeletePercent)*live, nil
		}
		for _, k := range []struct {
			n     int64
			table string
		}{{would.Surveys, "surveys"}, {would.Distributions, "distributions"}, {would.Recipients, "recipients"}} {
			v, err := over(k.n, k.table)
			if err != nil {
				return err
			}
			vetoed = vetoed || v
		}
		if override {
			vetoed = false
		}
		if !vetoed {
			b := &pgx.Batch{}
			if len(surveys) > 0 {
				b.Queue(`UPDATE surveys SET deleted_at = $3, updated_at = $3 WHERE integration_id = $1 AND qualtrics_id = ANY($2)`,
					integrationID, surveys, now)
			}
			if len(dists) > 0 {
				b.Queue(`UPDATE distributions SET deleted_at = $3, updated_at = $3 WHERE integration_id = $1 AND qualtrics_id = ANY($2)`,
					integrationID, dists, now)
			}
			b.Queue(`UPDATE recipients SET deleted_at = $3, updated_at = $3
				WHERE integration_id = $1 AND unlisted_run_id = $2 AND deleted_at IS NULL`, integrationID, runID, now)
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE sync_runs SET veto_decided = true, vetoed = $2, removals = $3 WHERE id = $1`, runID, vetoed, would)
		return err
	})
	return would, vetoed, mapErr("decide removals", err)
}
