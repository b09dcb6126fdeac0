package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change kinds a sync reports. The notification rules key on these strings.
const (
	ChangeSurveyNew          = "survey_new"
	ChangeSurveyActivated    = "survey_activated"
	ChangeSurveyDeactivated  = "survey_deactivated"
	ChangeDistributionNew    = "distribution_new"
	ChangeDistributionStats  = "distribution_stats"
	ChangeRecipientDelivered = "recipient_delivered"
	ChangeRecipientStatus    = "recipient_status"
)

// SurveyInput is one element of the survey listing, as the sync writes it.
// Zero times are stored as NULL.
type SurveyInput struct {
	ID           string
	Name         string
	OwnerID      string
	IsActive     bool
	CreationDate time.Time
	LastModified time.Time
}

// SurveyDetails is what GET /surveys/{id} adds to a listed survey.
type SurveyDetails struct {
	ID                 string
	StartDate          time.Time
	EndDate            time.Time
	ResponsesAuditable int
	ResponsesGenerated int
	ResponsesDeleted   int
}

// SurveyPage is what one page of surveys changed.
type SurveyPage struct {
	Changes []Change
	// NeedDetails lists the active surveys of the page whose details are stale:
	// new, activated, modified since their details were read, or never read.
	NeedDetails []string
}

// timeArg maps the zero time to NULL.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// createStaging creates a session-local staging table once per connection.
// ON COMMIT DELETE ROWS rather than ON COMMIT DROP: a sync stages thousands of
// pages, and creating and dropping a table per page churns the catalog for
// nothing. The DELETE covers a second use inside one transaction.
func createStaging(ctx context.Context, tx pgx.Tx, name, columns string) error {
	_, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+name+` (`+columns+`) ON COMMIT DELETE ROWS;
		DELETE FROM `+name)
	return err
}

const surveyStaging = `ord int NOT NULL, qualtrics_id text NOT NULL, name text NOT NULL, owner_id text NOT NULL,
	is_active boolean NOT NULL, creation_date timestamptz, last_modified timestamptz`

// The snapshot in old is taken before the upsert (one statement, one
// snapshot), so the changes are computed from what was stored, in SQL.
// details_synced_at is cleared when the survey changed or was activated, so an
// incremental sync reads its details again, even after an interrupted run.
const upsertSurveysSQL = `
WITH src AS (
	SELECT DISTINCT ON (qualtrics_id) * FROM sync_surveys_stage ORDER BY qualtrics_id, ord DESC
), old AS (
	SELECT s.qualtrics_id, s.is_active FROM surveys s JOIN src USING (qualtrics_id) WHERE s.integration_id = $1
), up AS (
	INSERT INTO surveys AS s (integration_id, qualtrics_id, name, owner_id, is_active, creation_date, last_modified,
		synced_at, created_at, updated_at, seen_run_id)
	SELECT $1, qualtrics_id, name, owner_id, is_active, creation_date, last_modified, $2, $2, $2, ` + currentFullRun + ` FROM src
	ON CONFLICT (integration_id, qualtrics_id) DO UPDATE SET
		name = excluded.name, owner_id = excluded.owner_id, is_active = excluded.is_active,
		creation_date = excluded.creation_date, last_modified = excluded.last_modified,
		details_synced_at = CASE WHEN s.last_modified IS DISTINCT FROM excluded.last_modified
			OR (excluded.is_active AND NOT s.is_active) THEN NULL ELSE s.details_synced_at END,
		deleted_at = NULL, synced_at = excluded.synced_at, updated_at = excluded.updated_at,
		seen_run_id = coalesce(excluded.seen_run_id, s.seen_run_id)
	WHERE (s.name, s.owner_id, s.is_active, s.creation_date, s.last_modified, s.deleted_at IS NULL)
		IS DISTINCT FROM (excluded.name, excluded.owner_id, excluded.is_active, excluded.creation_date, excluded.last_modified, true)
	RETURNING s.qualtrics_id, s.is_active
)
SELECT up.qualtrics_id,
	CASE WHEN old.qualtrics_id IS NULL THEN 'survey_new'
		WHEN up.is_active AND NOT old.is_active THEN 'survey_activated'
		WHEN old.is_active AND NOT up.is_active THEN 'survey_deactivated' END
FROM up LEFT JOIN old USING (qualtrics_id)
ORDER BY up.qualtrics_id`

// currentFullRun is the id of the integration's running full sync ($1), if
// any: the run that marks the rows it sees (seen_run_id) and removes, at its
// end, the rows it did not. Run ids, not times: synced_at is written by the
// clocks of whichever replicas worked the run's slices, and comparing it with
// the run's start taken on another clock can remove a row seen a second
// earlier.
const currentFullRun = `(SELECT id FROM sync_runs WHERE integration_id = $1 AND status = 'running' AND kind = 'full' LIMIT 1)`

// seenAgain is the condition under which an unchanged row {t} read by a sync
// is marked seen ($1 the integration, $2 now): during a full run, once per
// run (it was not seen by this run yet); during an incremental, never (an
// incremental rewrites no unchanged row and removes nothing); outside any run
// (tools, tests), always.
func seenAgain(t string) string {
	return `CASE (SELECT kind FROM sync_runs WHERE integration_id = $1 AND status = 'running' LIMIT 1)
		WHEN 'full' THEN ` + t + `.seen_run_id IS DISTINCT FROM ` + currentFullRun + `
		WHEN 'incremental' THEN false ELSE ` + t + `.synced_at < $2 END`
}

// UpsertSurveysTx writes one page of the survey listing and reports what
// changed. Rows that did not change are not rewritten; a full sync marks them
// seen (synced_at) once per run, which MarkSurveysDeletedTx relies on.
func UpsertSurveysTx(ctx context.Context, tx pgx.Tx, integrationID string, page []SurveyInput, now time.Time) (SurveyPage, error) {
	var out SurveyPage
	if len(page) == 0 {
		return out, nil
	}
	if err := createStaging(ctx, tx, "sync_surveys_stage", surveyStaging); err != nil {
		return out, mapErr("upsert surveys: stage", err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"sync_surveys_stage"},
		[]string{"ord", "qualtrics_id", "name", "owner_id", "is_active", "creation_date", "last_modified"},
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			s := page[i]
			return []any{i, s.ID, s.Name, s.OwnerID, s.IsActive, timeArg(s.CreationDate), timeArg(s.LastModified)}, nil
		}))
	if err != nil {
		return out, mapErr("upsert surveys: copy", err)
	}
	rows, err := tx.Query(ctx, upsertSurveysSQL, integrationID, now)
	if err != nil {
		return out, mapErr("upsert surveys", err)
	}
	for rows.Next() {
		var id string
		var kind *string
		if err := rows.Scan(&id, &kind); err != nil {
			rows.Close()
			return out, mapErr("upsert surveys", err)
		}
		if kind != nil {
			out.Changes = append(out.Changes, Change{Kind: *kind, SurveyID: id})
		}
	}
	if err := rows.Err(); err != nil {
		return out, mapErr("upsert surveys", err)
	}
	// Mark the unchanged rows seen, for MarkSurveysDeletedTx: once per full
	// run (never by an incremental), see seenAgain.
	if _, err := tx.Exec(ctx, `UPDATE surveys s SET synced_at = $2, seen_run_id = coalesce(`+currentFullRun+`, s.seen_run_id)
		FROM sync_surveys_stage t
		WHERE s.integration_id = $1 AND s.qualtrics_id = t.qualtrics_id AND `+seenAgain("s"), integrationID, now); err != nil {
		return out, mapErr("upsert surveys: mark seen", err)
	}
	rows, err = tx.Query(ctx, `SELECT s.qualtrics_id FROM surveys s
		WHERE s.integration_id = $1 AND s.qualtrics_id IN (SELECT qualtrics_id FROM sync_surveys_stage)
		AND s.is_active AND s.details_synced_at IS NULL ORDER BY s.qualtrics_id`, integrationID)
	if err != nil {
		return out, mapErr("upsert surveys: stale details", err)
	}
	out.NeedDetails, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return out, mapErr("upsert surveys: stale details", err)
}

// UpsertSurveys is UpsertSurveysTx in its own transaction.
func (s *Store) UpsertSurveys(ctx context.Context, integrationID string, page []SurveyInput, now time.Time) (out SurveyPage, err error) {
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		out, err = UpsertSurveysTx(ctx, tx, integrationID, page, now)
		return err
	})
	return out, err
}

// setSurveyDetailsSQL stores a survey's details ($1 the integration, $2 the
// survey, $3… the details) and moves the expiry of the recipients that
// inherit its end date, only when that date changed.
const setSurveyDetailsSQL = `WITH old AS (
		SELECT end_date FROM surveys WHERE integration_id = $1 AND qualtrics_id = $2
	), up AS (
		UPDATE surveys SET start_date = $3, end_date = $4, responses_auditable = $5,
		responses_generated = $6, responses_deleted = $7, details_synced_at = $8,
		updated_at = CASE WHEN (start_date, end_date, responses_auditable, responses_generated, responses_deleted)
			IS DISTINCT FROM ($3::timestamptz, $4::timestamptz, $5::int, $6::int, $7::int) THEN $8 ELSE updated_at END
		WHERE integration_id = $1 AND qualtrics_id = $2
		RETURNING 1
	)
	-- Driven by the ids of the survey's distributions that pass their end
	-- date on: the planner cannot start from the integration's recipients.
	UPDATE recipients r SET expires_at = $4
	WHERE EXISTS (SELECT 1 FROM up) AND (SELECT end_date FROM old) IS DISTINCT FROM $4::timestamptz
		AND r.integration_id = $1 AND r.distribution_id = ANY (ARRAY (SELECT d.qualtrics_id FROM distributions d
			WHERE d.integration_id = $1 AND d.survey_id = $2 AND d.link_expiration IS NULL))
		AND r.survey_id = $2 AND r.link_expiration IS NULL AND r.expires_at IS DISTINCT FROM $4::timestamptz`

// SetSurveyDetailsTx stores what GET /surveys/{id} said about a survey. A
// new end date moves the stored effective expiry of the recipients that
// inherit it (no link expiration of their own nor of their distribution).
func SetSurveyDetailsTx(ctx context.Context, tx pgx.Tx, integrationID string, d SurveyDetails, now time.Time) error {
	_, err := tx.Exec(ctx, setSurveyDetailsSQL,
		integrationID, d.ID, timeArg(d.StartDate), timeArg(d.EndDate), d.ResponsesAuditable, d.ResponsesGenerated, d.ResponsesDeleted, now)
	return mapErr("set survey details", err)
}

// StoredSurvey is a survey row as the sync left it (tests and tools).
type StoredSurvey struct {
	SurveyInput
	SurveyDetails
	DetailsSyncedAt *time.Time
	DeletedAt       *time.Time
	SyncedAt        time.Time
}

// ListStoredSurveys returns every survey row of an integration, by id.
func (s *Store) ListStoredSurveys(ctx context.Context, integrationID string) ([]StoredSurvey, error) {
	rows, err := s.pool.Query(ctx, `SELECT qualtrics_id, name, owner_id, is_active, coalesce(creation_date, 'epoch'::timestamptz),
		coalesce(last_modified, 'epoch'::timestamptz), coalesce(start_date, 'epoch'::timestamptz), coalesce(end_date, 'epoch'::timestamptz),
		responses_auditable, responses_generated, responses_deleted, details_synced_at, deleted_at, synced_at
		FROM surveys WHERE integration_id = $1 ORDER BY qualtrics_id`, integrationID)
	if err != nil {
		return nil, mapErr("list stored surveys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredSurvey, error) {
		var v StoredSurvey
		err := r.Scan(&v.SurveyInput.ID, &v.Name, &v.OwnerID, &v.IsActive, &v.CreationDate, &v.LastModified,
			&v.StartDate, &v.EndDate, &v.ResponsesAuditable, &v.ResponsesGenerated, &v.ResponsesDeleted,
			&v.DetailsSyncedAt, &v.DeletedAt, &v.SyncedAt)
		v.SurveyDetails.ID = v.SurveyInput.ID
		for _, t := range []*time.Time{&v.CreationDate, &v.LastModified, &v.StartDate, &v.EndDate} {
			if t.Unix() == 0 {
				*t = time.Time{}
			} else {
				*t = t.UTC()
			}
		}
		return v, err
	})
	return out, mapErr("list stored surveys", err)
}
