package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// A large distribution read over many pages keeps what it read when the read
// fails part-way: its staged pages stay under the run that
// staged them, and its cursor is kept on the distribution (its resume). The
// next run that reads it takes the cursor over and goes on from there, rather
// than reading a 10,000-page distribution from page 1 after a failure at page
// 9,000. A resume lives at most ResumeRetention; a cursor Qualtrics no longer
// accepts (an expired skipToken) starts the read over (RestartRecipientsUnitTx).

// ResumeRetention is how long a failed read's pages and cursor are kept for
// the next run: a later run reads the distribution from page 1, and the purge
// drops them.
const ResumeRetention = 6 * time.Hour

// resumeCursor is a unit's cursor kept on its distribution.
type resumeCursor struct {
	HistoryNext    string `json:"historyNext"`
	HistoryDone    bool   `json:"historyDone"`
	HistoryMissing string `json:"historyMissing"`
	LinksNext      string `json:"linksNext"`
	LinksDone      bool   `json:"linksDone"`
	NextOrd        int    `json:"nextOrd"`
	Pages          int    `json:"pages"`
}

// FailRecipientsUnitKeepingPagesTx ends a staged recipients unit as failed,
// keeping its staged pages and its cursor on its distribution for the next
// run (ResumeRecipientsUnitsTx). A unit already ended, or whose cursor moved
// since the worker read it, is left alone.
func FailRecipientsUnitKeepingPagesTx(ctx context.Context, tx pgx.Tx, integrationID string, u SyncUnit, errText string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE sync_units SET status = 'failed', error = $3, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending' AND next_ord = $4 AND pages = $5`,
		u.RunID, u.Key, errText, u.NextOrd, u.Pages)
	if err != nil || tag.RowsAffected() == 0 {
		return mapErr("fail recipients unit", err)
	}
	c := resumeCursor{HistoryNext: u.HistoryNext, HistoryDone: u.HistoryDone, HistoryMissing: u.HistoryMissing,
		LinksNext: u.LinksNext, LinksDone: u.LinksDone, NextOrd: u.NextOrd, Pages: u.Pages}
	_, err = tx.Exec(ctx, `UPDATE distributions SET resume_run_id = $3, resume_cursor = $4, resume_at = $5
		WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, u.DistributionID, u.StageRun(), c, now)
	return mapErr("keep recipients resume", err)
}

// resumeRecipientsUnitsSQL hands the fresh resumes of the distributions $3
// to the run's new recipients units of them, and drops any page staged after
// the cursor (a later attempt that died before it failed cleanly).
const resumeRecipientsUnitsSQL = `WITH r AS (
		SELECT d.qualtrics_id, d.resume_run_id, d.resume_cursor AS c FROM distributions d
		WHERE d.integration_id = $1 AND d.qualtrics_id = ANY($3) AND d.resume_run_id IS NOT NULL AND d.resume_at > $4
			AND EXISTS (SELECT 1 FROM sync_runs x WHERE x.id = d.resume_run_id)
	), u AS (
		UPDATE sync_units u SET stage_run_id = r.resume_run_id, staged = true,
			history_next = r.c->>'historyNext', history_done = (r.c->>'historyDone')::boolean,
			history_missing = r.c->>'historyMissing', links_next = r.c->>'linksNext',
			links_done = (r.c->>'linksDone')::boolean, next_ord = (r.c->>'nextOrd')::int, pages = (r.c->>'pages')::int,
			updated_at = now()
		FROM r WHERE u.run_id = $2 AND u.key = 'd:' || r.qualtrics_id AND u.status = 'pending' AND NOT u.staged AND u.pages = 0
		RETURNING u.stage_run_id, u.distribution_id, u.next_ord
	), h AS (
		DELETE FROM sync_stage_history s USING u
		WHERE s.run_id = u.stage_run_id AND s.distribution_id = u.distribution_id AND s.ord >= u.next_ord
	), l AS (
		DELETE FROM sync_stage_links s USING u
		WHERE s.run_id = u.stage_run_id AND s.distribution_id = u.distribution_id AND s.ord >= u.next_ord
	)
	SELECT count(*) FROM u`

// ResumeRecipientsUnitsTx lets the run's new recipients units of the
// distributions ids go on from an earlier run's failed read of them, when it
// failed after since. It returns how many did.
func ResumeRecipientsUnitsTx(ctx context.Context, tx pgx.Tx, integrationID string, runID int64, ids []string, since time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := tx.QueryRow(ctx, resumeRecipientsUnitsSQL, integrationID, runID, ids, since).Scan(&n)
	return n, mapErr("resume recipients units", err)
}

// RestartRecipientsUnitTx starts a resumed unit's read over from page 1:
// Qualtrics no longer accepts its cursor (a skipToken expired). The pages
// staged so far and the distribution's resume are dropped. It returns the
// unit as it now stands, or ErrUnitLost when another worker moved it.
func RestartRecipientsUnitTx(ctx context.Context, tx pgx.Tx, integrationID string, u SyncUnit) (SyncUnit, error) {
	tag, err := tx.Exec(ctx, `UPDATE sync_units SET stage_run_id = NULL, staged = false, history_next = '', history_done = false,
		history_missing = '', links_next = '', links_done = false, next_ord = 0, pages = 0, stalls = 0, updated_at = now()
		WHERE run_id = $1 AND key = $2 AND status = 'pending' AND next_ord = $3 AND pages = $4`,
		u.RunID, u.Key, u.NextOrd, u.Pages)
	if err != nil {
		return u, mapErr("restart recipients unit", err)
	}
	if tag.RowsAffected() == 0 {
		return u, ErrUnitLost
	}
	if u.Staged {
		if err := DropStagedRecipientsTx(ctx, tx, u.StageRun(), u.DistributionID); err != nil {
			return u, err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE distributions SET resume_run_id = NULL, resume_cursor = NULL, resume_at = NULL
		WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, u.DistributionID); err != nil {
		return u, mapErr("restart recipients unit", err)
	}
	v := SyncUnit{RunID: u.RunID, Key: u.Key, Kind: u.Kind, SurveyID: u.SurveyID, DistributionID: u.DistributionID,
		NeedDetails: u.NeedDetails, Status: u.Status}
	return v, nil
}

// dropStaleResumesSQL drops the resumes kept longer than their retention
// (no run read those distributions again), with their staged pages, but for
// one a unit is working right now, a thousand at a time (the purge runs
// again). The few resumes are read by distributions_resume_idx.
const dropStaleResumesSQL = `WITH old AS (
		SELECT d.integration_id, d.qualtrics_id, d.resume_run_id FROM distributions d
		WHERE d.resume_run_id IS NOT NULL AND d.resume_at < $1
			AND NOT EXISTS (SELECT 1 FROM sync_units u WHERE u.stage_run_id = d.resume_run_id
				AND u.distribution_id = d.qualtrics_id AND u.status = 'pending')
		LIMIT 1000
		FOR UPDATE OF d SKIP LOCKED
	), c AS (
		UPDATE distributions d SET resume_run_id = NULL, resume_cursor = NULL, resume_at = NULL
		FROM old WHERE d.integration_id = old.integration_id AND d.qualtrics_id = old.qualtrics_id
	), h AS (
		DELETE FROM sync_stage_history s USING old WHERE s.run_id = old.resume_run_id AND s.distribution_id = old.qualtrics_id
	), l AS (
		DELETE FROM sync_stage_links s USING old WHERE s.run_id = old.resume_run_id AND s.distribution_id = old.qualtrics_id
	)
	SELECT count(*) FROM old`

// DropStaleResumes drops the resumes older than before and their staged
// pages, and returns how many it dropped.
func (s *Store) DropStaleResumes(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		// Through distributions_resume_idx, even when the statistics are from
		// before the brand's data and call the table small.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, dropStaleResumesSQL, before).Scan(&n)
	})
	return n, mapErr("drop stale resumes", err)
}
