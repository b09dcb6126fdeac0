package syncer

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// noLinksBackoff is how long a distribution whose links are unavailable waits
// before it is read again, doubled at each miss, at most its verify period.
const noLinksBackoff = 15 * time.Minute

// recipients reads one distribution's history and links and merges them into
// its recipients. The join needs both sides and a half-read distribution must
// not mark its other recipients deleted, so the merge waits for both listings
// to end. No transaction is ever open across a call to Qualtrics: a small
// distribution is held in memory and written in one short transaction; a
// large one has each page staged in a short transaction that also records
// where its listings stand, so it continues over slices and replicas, and is
// merged from the staged pages at the end.
func (rs *runState) recipients(ctx context.Context, up *store.SyncUnit) error {
	u := *up
	defer func() { *up = u }() // the failure path keeps the cursor reached
	var buf recipientRows      // the pages held in memory while the unit is not staged
	d := u.DistributionID
	pages := 0
	// The pages named as next so far: a listing whose pages name each other
	// in a cycle (A → B → A) would otherwise be read forever.
	seen := map[string]bool{u.HistoryNext: u.HistoryNext != "", u.LinksNext: u.LinksNext != ""}
	// Calls to Qualtrics stop at the slice's hard stop (a unit may wait long
	// for its brand's tokens) so that what was read is staged with its cursor
	// before the job's own timeout, and the next slice goes on from there.
	cctx, cancel := context.WithDeadline(ctx, rs.hardStop)
	defer cancel()
	yield := func() error {
		if len(buf.hist)+len(buf.links) > 0 {
			if err := rs.stageRows(ctx, &u, buf.hist, buf.links); err != nil {
				return err
			}
			buf = recipientRows{}
		}
		if pages == 0 {
			return rs.stalled(ctx, u)
		}
		return errYield
	}
	for ; !u.HistoryDone || !u.LinksDone; pages++ {
		// A unit hands over between pages when the slice's time is up, after
		// at least one page of progress; the pages it holds in memory are
		// staged with its cursor first.
		if pages > 0 && !rs.s.now().Before(rs.deadline) {
			return yield()
		}
		var h []store.HistoryInput
		var l []store.LinkInput
		if !u.HistoryDone {
			page, next, err := rs.client.DistributionHistoryPage(cctx, d, u.HistoryNext)
			switch {
			case err != nil && cctx.Err() != nil && ctx.Err() == nil:
				return yield()
			case err != nil && skippable(err) && u.Resumed() && u.HistoryNext != "":
				if err := rs.restart(ctx, &u, &buf, err); err != nil {
					return err
				}
				seen = map[string]bool{}
				continue
			case err != nil && skippable(err) && u.NextOrd == 0 && len(buf.hist) == 0:
				// No XM Directory licence (404) or a test send (400): keep the
				// statuses stored, take email and links from links.
				u.HistoryDone, u.HistoryMissing = true, fmt.Sprintf("distribution %s: no history (%v); statuses kept as they were", d, err)
				continue
			case err != nil:
				return qfail("history of %s: %w", d, err)
			}
			if seen[next] {
				return qfail("history of %s: %w (a page named an earlier one as next)", d, qualtrics.ErrPaginationLoop)
			}
			seen[next] = next != ""
			h = historyInputs(page)
			u.HistoryNext, u.HistoryDone = next, next == ""
		} else {
			page, next, err := rs.client.DistributionLinksPage(cctx, d, u.SurveyID, u.LinksNext)
			switch {
			case err != nil && cctx.Err() != nil && ctx.Err() == nil:
				return yield()
			case err != nil && skippable(err) && u.Resumed() && u.LinksNext != "":
				if err := rs.restart(ctx, &u, &buf, err); err != nil {
					return err
				}
				seen = map[string]bool{}
				continue
			case err != nil && skippable(err):
				// Without links there is no email to match users by: keep what
				// is stored rather than blank it, and back off.
				return rs.noLinks(ctx, u, err)
			case err != nil:
				return qfail("links of %s: %w", d, err)
			}
			if seen[next] {
				return qfail("links of %s: %w (a page named an earlier one as next)", d, qualtrics.ErrPaginationLoop)
			}
			seen[next] = next != ""
			l = linkInputs(page)
			u.LinksNext, u.LinksDone = next, next == ""
		}
		if err := rs.keepPage(ctx, &u, &buf, h, l); err != nil {
			return err
		}
	}
	// The merge of a large distribution may take longer than what is left of
	// the job: it runs to its end on a clock of its own (the run's advisory
	// lock keeps any other job off the run meanwhile).
	mctx := ctx
	if u.Staged {
		var mcancel context.CancelFunc
		mctx, mcancel = context.WithTimeout(context.WithoutCancel(ctx), mergeTimeout)
		defer mcancel()
	}
	return rs.page(mctx, func(p *pageTx) error {
		silent, err := store.LockRecipientsUnitTx(mctx, p.tx, rs.in.ID, u)
		if err != nil {
			return err
		}
		b, err := store.BeginRecipientsTx(mctx, p.tx, rs.in.ID, d, u.SurveyID)
		if err != nil {
			return err
		}
		if u.Staged {
			err = b.AddStaged(mctx, u.StageRun(), u.NextOrd)
		} else {
			if err = b.AddHistory(mctx, buf.hist); err == nil {
				err = b.AddLinks(mctx, buf.links)
			}
		}
		if err != nil {
			return err
		}
		if u.HistoryMissing != "" {
			if err := b.KeepStoredHistory(mctx); err != nil {
				return err
			}
		}
		// A silent merge (old invitations read for the first time, or a
		// distribution back after it was removed) reports no change.
		var report func([]store.Change) error
		if !silent {
			report = func(ch []store.Change) error { return p.changed(mctx, ch) }
		}
		m, err := b.Merge(mctx, rs.s.now(), report)
		if err != nil {
			return err
		}
		p.recipients = m.Recipients
		p.warning = u.HistoryMissing
		return store.FinishRecipientsUnitTx(mctx, p.tx, rs.in.ID, u, u.HistoryMissing != "", rs.s.now())
	})
}

// mergeTimeout bounds the merge of a staged distribution.
const mergeTimeout = 10 * time.Minute

// maxStalls is how many slices in a row a unit may end without progress
// before it fails (a warning, and a backoff before it is read again).
const maxStalls = 4

// stalled records a slice in which the unit read nothing; after maxStalls of
// them it fails rather than being restarted forever.
func (rs *runState) stalled(ctx context.Context, u store.SyncUnit) error {
	n, err := rs.s.store.NoteSyncUnitStall(ctx, u)
	if err != nil {
		return err
	}
	if n >= maxStalls {
		return qfail("no progress in %d slices of the run in a row (its brand's budget is taken by other work, or Qualtrics answers too slowly)", n)
	}
	return errYield
}

// recipientRows are pages of a distribution held in memory.
type recipientRows struct {
	hist  []store.HistoryInput
	links []store.LinkInput
}

// keepPage keeps a page just read (of history or of links): staged with the
// unit's cursor when the unit is staged; else in memory, until the unit
// outgrows readAheadRows with a listing still to read, when all it holds is
// staged and the unit stays staged.
func (rs *runState) keepPage(ctx context.Context, u *store.SyncUnit, buf *recipientRows, h []store.HistoryInput, l []store.LinkInput) error {
	if u.Staged {
		return rs.stageRows(ctx, u, h, l)
	}
	buf.hist, buf.links = append(buf.hist, h...), append(buf.links, l...)
	if len(buf.hist)+len(buf.links) <= readAheadRows || (u.HistoryDone && u.LinksDone) {
		return nil
	}
	err := rs.stageRows(ctx, u, buf.hist, buf.links)
	*buf = recipientRows{}
	return err
}

// stageRows stages rows of a distribution, numbered on from the unit's
// cursor, and saves the cursor, in one short transaction.
func (rs *runState) stageRows(ctx context.Context, u *store.SyncUnit, h []store.HistoryInput, l []store.LinkInput) error {
	return rs.page(ctx, func(p *pageTx) error {
		v := *u
		if len(h) > 0 {
			if err := store.StageHistoryTx(ctx, p.tx, v.StageRun(), v.DistributionID, v.NextOrd, h); err != nil {
				return err
			}
		}
		if len(l) > 0 {
			if err := store.StageLinksTx(ctx, p.tx, v.StageRun(), v.DistributionID, v.NextOrd+len(h), l); err != nil {
				return err
			}
		}
		v.Staged, v.NextOrd, v.Pages = true, v.NextOrd+len(h)+len(l), v.Pages+1
		if err := store.SaveSyncUnitCursorTx(ctx, p.tx, *u, v); err != nil {
			return err
		}
		*u = v
		return nil
	})
}

// restart starts a resumed unit's read over from page 1: Qualtrics refused
// the cursor an earlier run's failed read left (a skipToken that expired).
func (rs *runState) restart(ctx context.Context, u *store.SyncUnit, buf *recipientRows, cause error) error {
	rs.s.log.Info("a failed read's cursor is no longer accepted; reading the distribution from its first page",
		zap.String("integrationId", rs.in.ID), zap.String("distributionId", u.DistributionID), zap.Error(cause))
	return rs.page(ctx, func(p *pageTx) error {
		v, err := store.RestartRecipientsUnitTx(ctx, p.tx, rs.in.ID, *u)
		if err == nil {
			*u, *buf = v, recipientRows{}
		}
		return err
	})
}

// noLinks ends a distribution whose links are unavailable: a warning, its
// recipients left as they were, and a growing wait before it is read again.
func (rs *runState) noLinks(ctx context.Context, u store.SyncUnit, cause error) error {
	warning := fmt.Sprintf("distribution %s: no links (%v); recipients left as they were", u.DistributionID, cause)
	rs.warn("%s", warning)
	maxWait := rs.in.Schedule.Effective().VerifyEvery
	return rs.page(ctx, func(p *pageTx) error {
		if err := store.RecipientsFailedTx(ctx, p.tx, rs.in.ID, u.DistributionID, warning, noLinksBackoff, maxWait, rs.s.now()); err != nil {
			return err
		}
		return store.FinishSyncUnitTx(ctx, p.tx, u, store.UnitDone, "")
	})
}

func historyInputs(page []qualtrics.HistoryEntry) []store.HistoryInput {
	h := make([]store.HistoryInput, len(page))
	for i := range page {
		e := &page[i]
		h[i] = store.HistoryInput{ContactID: e.ContactID, ContactLookupID: e.ContactLookupID, Status: string(e.Status),
			SurveyLink: e.SurveyLink, ResponseID: e.ResponseID, SentAt: e.SentAt, OpenedAt: e.OpenedAt,
			ResponseStartedAt: e.ResponseStartedAt, ResponseCompletedAt: e.ResponseCompletedAt}
	}
	return h
}

func linkInputs(page []qualtrics.Link) []store.LinkInput {
	l := make([]store.LinkInput, len(page))
	for i := range page {
		e := &page[i]
		l[i] = store.LinkInput{ContactID: e.ContactID, Email: e.Email, FirstName: e.FirstName, LastName: e.LastName,
			Link: e.Link, LinkExpiration: e.LinkExpiration, Unsubscribed: e.Unsubscribed,
			ExceededContactFrequency: e.ExceededContactFrequency}
	}
	return l
}
