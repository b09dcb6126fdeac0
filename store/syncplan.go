package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A sync run is worked as a plan of units, each small enough for a short
// River job: the survey listing (the run's "surveys" phase), one unit per
// active survey (its details and distribution listing) and one per
// distribution whose history and links are read. The run records which units
// are done, so a run interrupted anywhere (a job's time slice ending, a
// replica killed) continues where it stopped.

// Unit kinds.
const (
	UnitSurvey     = "survey"
	UnitRecipients = "recipients"
)

// Unit statuses.
const (
	UnitPending = "pending"
	UnitDone    = "done"
	UnitFailed  = "failed"
)

// SyncUnit is one unit of a run's plan.
type SyncUnit struct {
	RunID          int64
	Key            string
	Kind           string
	SurveyID       string
	DistributionID string
	NeedDetails    bool
	Status         string

	// Where a large distribution's listings stopped: the nextPage URLs to
	// follow ("" before the first page), whether each listing is complete,
	// and whether its pages so far are staged in the database.
	Staged         bool
	HistoryNext    string
	HistoryDone    bool
	HistoryMissing string // why history is unavailable (kept from the stored rows)
	LinksNext      string
	LinksDone      bool
	NextOrd        int
	Pages          int
	// StageRunID is the run whose staged pages the unit continues, when it
	// took over the cursor of an earlier run's failed read (0: its own run).
	StageRunID int64

	// Where a survey unit's distribution listing stands: the nextPage to
	// follow ("" before the first page), whether the unit read the survey's
	// details, and whether it must read them again at the end.
	ListingNext string
	DetailsRead bool
	DetailsDue  bool
}

// StageRun is the run the unit's pages are staged under.
func (u SyncUnit) StageRun() int64 {
	if u.StageRunID != 0 {
		return u.StageRunID
	}
	return u.RunID
}

// Resumed says the unit goes on from an earlier run's failed read.
func (u SyncUnit) Resumed() bool { return u.StageRunID != 0 && u.StageRunID != u.RunID }

// UnitKey is the key of a survey or recipients unit.
func UnitKey(kind, id string) string {
	if kind == UnitSurvey {
		return "s:" + id
	}
	return "d:" + id
}

const syncUnitColumns = `run_id, key, kind, survey_id, distribution_id, need_details, status, staged,
	history_next, history_done, history_missing, links_next, links_done, next_ord, pages, coalesce(stage_run_id, 0),
	listing_next, details_read, details_due`

func scanSyncUnit(row pgx.CollectableRow) (SyncUnit, error) {
	var u SyncUnit
	err := row.Scan(&u.RunID, &u.Key, &u.Kind, &u.SurveyID, &u.DistributionID, &u.NeedDetails, &u.Status, &u.Staged,
		&u.HistoryNext, &u.HistoryDone, &u.HistoryMissing, &u.LinksNext, &u.LinksDone, &u.NextOrd, &u.Pages, &u.StageRunID,
		&u.ListingNext, &u.DetailsRead, &u.DetailsDue)
	return u, err
}

// BeginSyncRunJob marks a queued run running (keeping its first start time
// and the base URL it started with) and counts one more job working it. It
// returns ErrNotFound when the run is gone or already finished.
func (s *Store) BeginSyncRunJob(ctx context.Context, integrationID string, id int64, now time.Time, baseURL string) (SyncRun, error) {
	run, err := scanSyncRun(s.pool.QueryRow(ctx, `UPDATE sync_runs SET status = 'running', started_at = coalesce(started_at, $3),
		base_url = CASE WHEN base_url = '' THEN $4 ELSE base_url END, jobs = jobs + 1
		WHERE integration_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING `+syncRunColumns,
		integrationID, id, now, baseURL))
	return run, mapErr("begin sync run job", err)
}

// SaveSyncRunProgress stores a running run's figures, warnings and changes so
// far, and its phase, without finishing it.
func (s *Store) SaveSyncRunProgress(ctx context.Context, run SyncRun) error {
	run.fillLists()
	_, err := s.pool.Exec(ctx, `UPDATE sync_runs SET api_calls = $3, api_calls_by_endpoint = $4, surveys = $5,
		distributions = $6, recipients = $7, notifications = $8, warnings = $9, changes = $10, phase = $11
		WHERE integration_id = $1 AND id = $2 AND status = 'running'`,
		run.IntegrationID, run.ID, run.APICalls, run.APICallsByEndpoint, run.Surveys, run.Distributions, run.Recipients,
		run.Notifications, run.Warnings, run.Changes, run.Progress.Phase)
	return mapErr("save sync run progress", err)
}

// AddSyncUnitsTx adds units to a run's plan; units already planned are left
// as they are. It returns how many were added.
func AddSyncUnitsTx(ctx context.Context, tx pgx.Tx, runID int64, units []SyncUnit) (int, error) {
	if len(units) == 0 {
		return 0, nil
	}
	keys, kinds, surveys, dists := make([]string, len(units)), make([]string, len(units)), make([]string, len(units)), make([]string, len(units))
	details := make([]bool, len(units))
	for i, u := range units {
		keys[i], kinds[i], surveys[i], dists[i], details[i] = u.Key, u.Kind, u.SurveyID, u.DistributionID, u.NeedDetails
	}
	// The run's counters are not touched here: concurrent units would queue
	// on its row. RefreshSyncRunUnitCounts counts from the units.
	tag, err := tx.Exec(ctx, `INSERT INTO sync_units (run_id, key, kind, survey_id, distribution_id, need_details)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[])
		ON CONFLICT (run_id, key) DO NOTHING`,
		runID, keys, kinds, surveys, dists, details)
	return int(tag.RowsAffected()), mapErr("add sync units", err)
}

// PendingSyncUnits returns up to limit pending units of a run, of one kind
// ("" for any: survey units first), skipping the keys in skip (units being
// worked right now).
func (s *Store) PendingSyncUnits(ctx context.Context, runID int64, kind string, limit int, skip []string) ([]SyncUnit, error) {
	if skip == nil {
		skip = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+syncUnitColumns+` FROM sync_units
		WHERE run_id = $1 AND status = 'pending' AND NOT key = ANY($3) AND ($4 = '' OR kind = $4)
		ORDER BY kind DESC, key LIMIT $2`, runID, limit, skip, kind)
	if err != nil {
		return nil, mapErr("pending sync units", err)
	}
	out, err := pgx.CollectRows(rows, scanSyncUnit)
	return out, mapErr("pending sync units", err)
}

// ListSyncUnits returns every unit of a run (tests, tools).
func (s *Store) ListSyncUnits(ctx context.Context, runID int64) ([]SyncUnit, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+syncUnitColumns+` FROM sync_units WHERE run_id = $1 ORDER BY kind DESC, key`, runID)
	if err != nil {
		return nil, mapErr("list sync units", err)
	}
	out, err := pgx.CollectRows(rows, scanSyncUnit)
	return out, mapErr("list sync units", err)
}

// FinishSyncUnitTx ends a unit (done or failed) and drops what it staged. A unit already ended is left alone.
func FinishSyncUnitTx(ctx context.Context, tx pgx.Tx, u SyncUnit, status, errText string) error {
	tag, err := tx.Exec(ctx, `UPDATE sync_units SET status = $3, error = $4, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending'`, u.RunID, u.Key, status, errText)
	if err != nil {
		return mapErr("finish sync unit", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	if u.Staged {
		return DropStagedRecipientsTx(ctx, tx, u.StageRun(), u.DistributionID)
	}
	return nil
}

// SetSurveyUnitListedTx records that a survey unit read its survey's whole
// distribution listing: at the end of a full run, the survey's distributions
// the run did not see are removed (DecideRemovals).
func SetSurveyUnitListedTx(ctx context.Context, tx pgx.Tx, u SyncUnit) error {
	_, err := tx.Exec(ctx, `UPDATE sync_units SET listed = true WHERE run_id = $1 AND key = $2`, u.RunID, u.Key)
	return mapErr("set survey unit listed", err)
}

// SaveSyncUnitCursorTx stores where a unit's listings stand, in the
// transaction that staged the page that moved them: a compare-and-set from
// the cursor the worker read (prev), so that a second worker on the same unit
// cannot move it too (ErrUnitLost, and the transaction rolls back with the
// page it staged). Progress resets the unit's stalls.
func SaveSyncUnitCursorTx(ctx context.Context, tx pgx.Tx, prev, u SyncUnit) error {
	tag, err := tx.Exec(ctx, `UPDATE sync_units SET staged = $3, history_next = $4, history_done = $5, history_missing = $6,
		links_next = $7, links_done = $8, next_ord = $9, pages = $10, stalls = 0, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending' AND next_ord = $11 AND pages = $12`,
		u.RunID, u.Key, u.Staged, u.HistoryNext, u.HistoryDone, u.HistoryMissing, u.LinksNext, u.LinksDone, u.NextOrd, u.Pages,
		prev.NextOrd, prev.Pages)
	if err != nil {
		return mapErr("save sync unit cursor", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUnitLost
	}
	return nil
}

// SaveSurveyUnitCursorTx stores where a survey unit's listing stands, in the
// transaction that planned the recipients units of the page it read: a
// compare-and-set from the cursor the worker read (prev), like
// SaveSyncUnitCursorTx. Progress resets the unit's stalls.
func SaveSurveyUnitCursorTx(ctx context.Context, tx pgx.Tx, prev, u SyncUnit) error {
	tag, err := tx.Exec(ctx, `UPDATE sync_units SET listing_next = $3, details_read = $4, details_due = $5, stalls = 0, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending' AND listing_next = $6`,
		u.RunID, u.Key, u.ListingNext, u.DetailsRead, u.DetailsDue, prev.ListingNext)
	if err != nil {
		return mapErr("save survey unit cursor", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUnitLost
	}
	return nil
}

// StageHistoryTx stages a page of a distribution's history for a run, rows
// numbered from ord.
func StageHistoryTx(ctx context.Context, tx pgx.Tx, runID int64, distributionID string, ord int, page []HistoryInput) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"sync_stage_history"},
		[]string{"run_id", "distribution_id", "ord", "contact_id", "contact_lookup_id", "status", "survey_link", "response_id",
			"sent_at", "opened_at", "response_started_at", "response_completed_at"},
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			h := &page[i]
			return []any{runID, distributionID, ord + i, h.ContactID, h.ContactLookupID, h.Status, h.SurveyLink, h.ResponseID,
				timeArg(h.SentAt), timeArg(h.OpenedAt), timeArg(h.ResponseStartedAt), timeArg(h.ResponseCompletedAt)}, nil
		}))
	return mapErr("stage history page", err)
}

// StageLinksTx stages a page of a distribution's links for a run.
func StageLinksTx(ctx context.Context, tx pgx.Tx, runID int64, distributionID string, ord int, page []LinkInput) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"sync_stage_links"},
		[]string{"run_id", "distribution_id", "ord", "contact_id", "email", "first_name", "last_name", "link",
			"link_expiration", "unsubscribed", "exceeded"},
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			l := &page[i]
			return []any{runID, distributionID, ord + i, l.ContactID, l.Email, l.FirstName, l.LastName, l.Link,
				timeArg(l.LinkExpiration), l.Unsubscribed, l.ExceededContactFrequency}, nil
		}))
	return mapErr("stage links page", err)
}

// DropStagedRecipientsTx deletes what a run staged for a distribution, and
// the distribution's resume when it pointed at those pages.
func DropStagedRecipientsTx(ctx context.Context, tx pgx.Tx, runID int64, distributionID string) error {
	_, err := tx.Exec(ctx, `DELETE FROM sync_stage_history WHERE run_id = $1 AND distribution_id = $2;`, runID, distributionID)
	if err == nil {
		_, err = tx.Exec(ctx, `DELETE FROM sync_stage_links WHERE run_id = $1 AND distribution_id = $2`, runID, distributionID)
	}
	if err == nil {
		_, err = tx.Exec(ctx, `UPDATE distributions SET resume_run_id = NULL, resume_cursor = NULL, resume_at = NULL
			WHERE resume_run_id = $1 AND qualtrics_id = $2`, runID, distributionID)
	}
	return mapErr("drop staged recipients", err)
}

// AddStaged moves the pages a run staged for the batch's distribution into
// the batch, so Merge sees them as if they had been added in this
// transaction. want is the number of rows the unit's cursor says it staged:
// fewer or more (pages of another worker, or pages lost) is ErrUnitLost, and
// nothing is merged.
func (b *RecipientBatch) AddStaged(ctx context.Context, runID int64, want int) error {
	if err := b.stage(ctx); err != nil {
		return err
	}
	h, err := b.tx.Exec(ctx, `INSERT INTO sync_history_stage (ord, contact_id, contact_lookup_id, status, survey_link,
		response_id, sent_at, opened_at, response_started_at, response_completed_at)
		SELECT ord, contact_id, contact_lookup_id, status, survey_link, response_id, sent_at, opened_at,
			response_started_at, response_completed_at
		FROM sync_stage_history WHERE run_id = $1 AND distribution_id = $2 AND ord < $3`, runID, b.distributionID, want)
	if err != nil {
		return mapErr("add staged history", err)
	}
	l, err := b.tx.Exec(ctx, `INSERT INTO sync_links_stage (ord, contact_id, email, first_name, last_name, link,
		link_expiration, unsubscribed, exceeded)
		SELECT ord, contact_id, email, first_name, last_name, link, link_expiration, unsubscribed, exceeded
		FROM sync_stage_links WHERE run_id = $1 AND distribution_id = $2 AND ord < $3`, runID, b.distributionID, want)
	if err != nil {
		return mapErr("add staged links", err)
	}
	if got := h.RowsAffected() + l.RowsAffected(); got != int64(want) {
		return fmt.Errorf("store: %d rows staged for distribution %s where its cursor says %d: %w", got, b.distributionID, want, ErrUnitLost)
	}
	return nil
}

// RecipientsToRead narrows a survey's listed live distributions to those
// whose history and links this run reads: the ones in moved (new, figures
// or modifiedDate changed, never read completely), and with verify set those
// not read for a while: each distribution's threshold lies between half and
// all of verifyEvery (spread by a hash of its id, so a brand's distributions
// come due a slice at a time rather than all at once), less slack (the full
// sync period, so a distribution is re-read at least once per verifyEvery).
// A full sync also reads again those whose last read was incomplete (a
// warning: no history without a licence). Distributions backing off after
// missing links wait until their retry time.
func (s *Store) RecipientsToRead(ctx context.Context, integrationID string, live, moved []string, verify bool,
	verifyEvery, slack time.Duration, now time.Time) ([]string, error) {
	if len(live) == 0 {
		return nil, nil
	}
	if moved == nil {
		moved = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT qualtrics_id FROM distributions
		WHERE integration_id = $1 AND qualtrics_id = ANY($2)
		AND (recipients_retry_at IS NULL OR recipients_retry_at <= $5)
		AND (qualtrics_id = ANY($3) OR recipients_synced_at IS NULL
			OR ($4 AND recipients_warning <> '')
			OR ($4 AND recipients_synced_at <= $5 - make_interval(secs => greatest(0,
				$6::double precision * (0.5 + 0.5 * ((hashtext(qualtrics_id) & 1023) / 1023.0)) - $7::double precision))))
		ORDER BY qualtrics_id`,
		integrationID, live, moved, verify, now, verifyEvery.Seconds(), slack.Seconds())
	if err != nil {
		return nil, mapErr("recipients to read", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, mapErr("recipients to read", err)
}

// RecipientsFailedTx records that a distribution's recipients could not be
// read: the next run reads them again (recipients_synced_at cleared), unless
// backoff is set (links unavailable), which delays that by backoff × 2^(the
// failures so far), at most maxBackoff.
func RecipientsFailedTx(ctx context.Context, tx pgx.Tx, integrationID, distributionID, warning string,
	backoff, maxBackoff time.Duration, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE distributions SET recipients_synced_at = NULL, recipients_warning = $3,
		recipients_failures = recipients_failures + 1,
		recipients_retry_at = CASE WHEN $4::double precision > 0 THEN $6::timestamptz + make_interval(secs =>
			least($5::double precision, $4::double precision * power(2, least(recipients_failures, 20)))) END
		WHERE integration_id = $1 AND qualtrics_id = $2`,
		integrationID, distributionID, warning, backoff.Seconds(), maxBackoff.Seconds(), now)
	return mapErr("record recipients failure", err)
}

// ErrUnitLost says a unit is no longer this worker's to write: it ended
// (another worker merged it), or its cursor moved since this worker read it.
// The transaction that met it must roll back.
var ErrUnitLost = errors.New("store: sync unit taken over by another worker")

// LockRecipientsUnitTx locks a pending recipients unit for its merge, in the
// merge's transaction, and checks that its cursor is the one the worker holds
// (a second worker on the same unit has moved or ended it otherwise: then
// ErrUnitLost). silent reports that the merge must announce nothing: the
// distribution existed at the integration's first full sync and was never
// read, or it came back after being removed.
func LockRecipientsUnitTx(ctx context.Context, tx pgx.Tx, integrationID string, u SyncUnit) (silent bool, err error) {
	var nextOrd, pages int
	err = tx.QueryRow(ctx, `SELECT u.next_ord, u.pages, coalesce((SELECT d.recipients_silent FROM distributions d
			WHERE d.integration_id = $1 AND d.qualtrics_id = u.distribution_id), false)
		FROM sync_units u WHERE u.run_id = $2 AND u.key = $3 AND u.status = 'pending' FOR UPDATE`,
		integrationID, u.RunID, u.Key).Scan(&nextOrd, &pages, &silent)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrUnitLost
	}
	if err != nil {
		return false, mapErr("lock recipients unit", err)
	}
	if nextOrd != u.NextOrd || pages != u.Pages {
		return false, ErrUnitLost
	}
	return silent, nil
}

// FinishRecipientsUnitTx records, in one round trip, that a distribution's
// recipients were read (when, with what warning, whether its history was
// available, its failure count and silence cleared) and that its unit is
// done, and drops what the unit staged. The unit must be locked
// (LockRecipientsUnitTx) in tx.
func FinishRecipientsUnitTx(ctx context.Context, tx pgx.Tx, integrationID string, u SyncUnit, historyUnavailable bool, now time.Time) error {
	b := &pgx.Batch{}
	b.Queue(`UPDATE distributions SET recipients_synced_at = $3, recipients_warning = '', history_unavailable = $4,
		recipients_failures = 0, recipients_retry_at = NULL, recipients_silent = false,
		resume_run_id = NULL, resume_cursor = NULL, resume_at = NULL
		WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, u.DistributionID, now, historyUnavailable)
	b.Queue(`UPDATE sync_units SET status = 'done', error = '', updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending'`, u.RunID, u.Key)
	if u.Staged {
		b.Queue(`DELETE FROM sync_stage_history WHERE run_id = $1 AND distribution_id = $2`, u.StageRun(), u.DistributionID)
		b.Queue(`DELETE FROM sync_stage_links WHERE run_id = $1 AND distribution_id = $2`, u.StageRun(), u.DistributionID)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return mapErr("finish recipients unit", err)
	}
	tag, err := br.Exec()
	if err != nil {
		return mapErr("finish recipients unit", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUnitLost
	}
	return mapErr("finish recipients unit", br.Close())
}

// SyncUnitUnmoved says the unit is still pending at u's cursor: nobody
// else moved or ended it.
func (s *Store) SyncUnitUnmoved(ctx context.Context, u SyncUnit) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sync_units WHERE run_id = $1 AND key = $2
		AND status = 'pending' AND next_ord = $3 AND pages = $4)`, u.RunID, u.Key, u.NextOrd, u.Pages).Scan(&ok)
	return ok, mapErr("sync unit unmoved", err)
}

// NoteSyncUnitStall counts a slice in which a unit made no progress and
// returns how many such slices it has had since its last progress.
func (s *Store) NoteSyncUnitStall(ctx context.Context, u SyncUnit) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `UPDATE sync_units SET stalls = stalls + 1, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending' RETURNING stalls`, u.RunID, u.Key).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrUnitLost
	}
	return n, mapErr("note sync unit stall", err)
}

// FailedSyncUnits returns the errors of a run's failed units, by unit key
// (the run's warnings are built from them, so a replica killed after a unit
// failed loses none).
func (s *Store) FailedSyncUnits(ctx context.Context, runID int64) ([]SyncUnit, []string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+syncUnitColumns+`, error FROM sync_units
		WHERE run_id = $1 AND status = 'failed' ORDER BY kind DESC, key`, runID)
	if err != nil {
		return nil, nil, mapErr("failed sync units", err)
	}
	defer rows.Close()
	var units []SyncUnit
	var errs []string
	for rows.Next() {
		var u SyncUnit
		var e string
		if err := rows.Scan(&u.RunID, &u.Key, &u.Kind, &u.SurveyID, &u.DistributionID, &u.NeedDetails, &u.Status, &u.Staged,
			&u.HistoryNext, &u.HistoryDone, &u.HistoryMissing, &u.LinksNext, &u.LinksDone, &u.NextOrd, &u.Pages, &u.StageRunID,
			&u.ListingNext, &u.DetailsRead, &u.DetailsDue, &e); err != nil {
			return nil, nil, mapErr("failed sync units", err)
		}
		units, errs = append(units, u), append(errs, e)
	}
	return units, errs, mapErr("failed sync units", rows.Err())
}

// SetSyncRunPhaseTx moves a running run to its next phase.
func SetSyncRunPhaseTx(ctx context.Context, tx pgx.Tx, runID int64, phase string) error {
	_, err := tx.Exec(ctx, `UPDATE sync_runs SET phase = $2 WHERE id = $1 AND status = 'running'`, runID, phase)
	return mapErr("set sync run phase", err)
}

// RefreshSyncRunUnitCounts counts a running run's units by status onto its
// row (for its progress) and returns them with its phase and jobs.
func (s *Store) RefreshSyncRunUnitCounts(ctx context.Context, runID int64) (SyncProgress, error) {
	var p SyncProgress
	err := s.pool.QueryRow(ctx, `WITH c AS (
		SELECT count(*)::int AS total, (count(*) FILTER (WHERE status = 'done'))::int AS done,
			(count(*) FILTER (WHERE status = 'failed'))::int AS failed
		FROM sync_units WHERE run_id = $1
	)
	UPDATE sync_runs r SET units_total = c.total, units_done = c.done, units_failed = c.failed
	FROM c WHERE r.id = $1 AND r.status = 'running'
	RETURNING r.phase, r.units_total, r.units_done, r.units_failed, r.jobs`, runID).
		Scan(&p.Phase, &p.UnitsTotal, &p.UnitsDone, &p.UnitsFailed, &p.Jobs)
	return p, mapErr("refresh sync run unit counts", err)
}

// keptStaging leaves out of a clean-up the staged pages a distribution keeps
// for the next run's read (its resume): a hashed set of the few such pages'
// owners, read by distributions_resume_idx.
const keptStaging = ` AND (t.run_id, t.distribution_id) NOT IN (
	SELECT d.resume_run_id, d.qualtrics_id FROM distributions d WHERE d.resume_run_id IS NOT NULL)`

// keptOfRun leaves out of a run's clean-up the pages its failed reads keep.
const keptOfRun = ` AND t.distribution_id NOT IN (
	SELECT d.qualtrics_id FROM distributions d WHERE d.resume_run_id = $1 ORDER BY d.resume_run_id)`

// DeleteSyncUnits drops a finished run's plan and staging, but for the pages
// of a failed read that the next run goes on from.
func (s *Store) DeleteSyncUnits(ctx context.Context, runID int64) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sync_units WHERE run_id = $1`, runID)
	if err == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM sync_stage_history t WHERE t.run_id = $1`+keptOfRun, runID)
	}
	if err == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM sync_stage_links t WHERE t.run_id = $1`+keptOfRun, runID)
	}
	if err != nil {
		return fmt.Errorf("store: delete sync units: %w", err)
	}
	return nil
}

// DropFinishedSyncPlans deletes the plans and staged pages of runs that
// ended without their own clean-up (a run failed as an orphan), so a large
// distribution's staged pages do not wait for the run's retention.
func (s *Store) DropFinishedSyncPlans(ctx context.Context) (int64, error) {
	var n int64
	for _, table := range []string{"sync_stage_history", "sync_stage_links", "sync_units"} {
		kept := keptStaging
		if table == "sync_units" {
			kept = ""
		}
		tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` t USING sync_runs r
			WHERE r.id = t.run_id AND r.status NOT IN ('queued', 'running')`+kept)
		if err != nil {
			return n, mapErr("drop finished sync plans", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// syncRunLockSpace is the first key of the advisory locks that hold a run for
// the job working a slice of it.
const syncRunLockSpace = 0x73796e63 // "sync"

// ErrRunBusy says another job holds the run: a rescued job whose first worker
// is still alive, or a second job of the same run.
var ErrRunBusy = errors.New("store: sync run is being worked by another job")

// HoldSyncRun takes the run's advisory lock on a connection of its own, for
// as long as one job works a slice of it: two jobs never work one run at once,
// whatever River's rescuer decides from its clock. It returns ErrRunBusy when
// another job holds it. release gives the lock and the connection back; a
// replica that dies releases it with its connection.
func (s *Store) HoldSyncRun(ctx context.Context, runID int64) (release func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr("hold sync run", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(syncRunLockSpace), int32(runID)).Scan(&ok); err != nil {
		conn.Release()
		return nil, mapErr("hold sync run", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrRunBusy
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, int32(syncRunLockSpace), int32(runID)); err != nil {
			// The lock must not outlive the slice on a pooled connection.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}
