package syncer

import (
	"context"
	"fmt"
	"time"

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
func (rs *runState) recipients(ctx context.Context, u store.SyncUnit) error {
	var (
		hist  []store.HistoryInput
		links []store.LinkInput
	)
	d := u.DistributionID
	pages := 0
	for ; !u.HistoryDone || !u.LinksDone; pages++ {
		// A staged distribution hands over between pages when the slice's
		// time is up, after at least one page of progress.
		if u.Staged && pages > 0 && !rs.s.now().Before(rs.deadline) {
			return errYield
		}
		if !u.HistoryDone {
			page, next, err := rs.client.DistributionHistoryPage(ctx, d, u.HistoryNext)
			switch {
			case err != nil && skippable(err) && u.NextOrd == 0 && len(hist) == 0:
				// No XM Directory licence (404) or a test send (400): keep the
				// statuses stored, take email and links from links.
				u.HistoryDone, u.HistoryMissing = true, fmt.Sprintf("distribution %s: no history (%v); statuses kept as they were", d, err)
				continue
			case err != nil:
				return qfail("history of %s: %w", d, err)
			}
			h := historyInputs(page)
			u.HistoryNext, u.HistoryDone = next, next == ""
			if u.Staged {
				err = rs.stagePage(ctx, &u, func(p *pageTx) error { return store.StageHistoryTx(ctx, p.tx, rs.run.ID, d, u.NextOrd, h) }, len(h))
			} else {
				hist = append(hist, h...)
				err = rs.maybeStage(ctx, &u, &hist, &links)
			}
			if err != nil {
				return err
			}
			continue
		}
		page, next, err := rs.client.DistributionLinksPage(ctx, d, u.SurveyID, u.LinksNext)
		switch {
		case err != nil && skippable(err):
			// Without links there is no email to match users by: keep what
			// is stored rather than blank it, and back off.
			return rs.noLinks(ctx, u, err)
		case err != nil:
			return qfail("links of %s: %w", d, err)
		}
		l := linkInputs(page)
		u.LinksNext, u.LinksDone = next, next == ""
		if u.Staged {
			err = rs.stagePage(ctx, &u, func(p *pageTx) error { return store.StageLinksTx(ctx, p.tx, rs.run.ID, d, u.NextOrd, l) }, len(l))
		} else {
			links = append(links, l...)
			err = rs.maybeStage(ctx, &u, &hist, &links)
		}
		if err != nil {
			return err
		}
	}
	return rs.page(ctx, func(p *pageTx) error {
		b, err := store.BeginRecipientsTx(ctx, p.tx, rs.in.ID, d, u.SurveyID)
		if err != nil {
			return err
		}
		if u.Staged {
			err = b.AddStaged(ctx, rs.run.ID)
		} else {
			if err = b.AddHistory(ctx, hist); err == nil {
				err = b.AddLinks(ctx, links)
			}
		}
		if err != nil {
			return err
		}
		if u.HistoryMissing != "" {
			if err := b.KeepStoredHistory(ctx); err != nil {
				return err
			}
		}
		m, err := b.Merge(ctx, rs.s.now(), func(ch []store.Change) error { return p.changed(ctx, ch) })
		if err != nil {
			return err
		}
		p.recipients = m.Recipients
		p.warning = u.HistoryMissing
		return store.FinishRecipientsUnitTx(ctx, p.tx, rs.in.ID, u, u.HistoryMissing, rs.s.now())
	})
}

// maybeStage moves a distribution that outgrew readAheadRows to staging: the
// pages read so far are staged with where the listings stand.
func (rs *runState) maybeStage(ctx context.Context, u *store.SyncUnit, hist *[]store.HistoryInput, links *[]store.LinkInput) error {
	if len(*hist)+len(*links) <= readAheadRows || (u.HistoryDone && u.LinksDone) {
		return nil
	}
	h, l := *hist, *links
	err := rs.page(ctx, func(p *pageTx) error {
		if err := store.StageHistoryTx(ctx, p.tx, rs.run.ID, u.DistributionID, 0, h); err != nil {
			return err
		}
		if err := store.StageLinksTx(ctx, p.tx, rs.run.ID, u.DistributionID, len(h), l); err != nil {
			return err
		}
		v := *u
		v.Staged, v.NextOrd, v.Pages = true, len(h)+len(l), v.Pages+1
		if err := store.SaveSyncUnitCursorTx(ctx, p.tx, v); err != nil {
			return err
		}
		*u = v
		return nil
	})
	*hist, *links = nil, nil
	return err
}

// stagePage stages one page of a staged distribution and moves its cursor,
// in one short transaction.
func (rs *runState) stagePage(ctx context.Context, u *store.SyncUnit, stage func(p *pageTx) error, rows int) error {
	return rs.page(ctx, func(p *pageTx) error {
		if err := stage(p); err != nil {
			return err
		}
		v := *u
		v.NextOrd, v.Pages = v.NextOrd+rows, v.Pages+1
		if err := store.SaveSyncUnitCursorTx(ctx, p.tx, v); err != nil {
			return err
		}
		*u = v
		return nil
	})
}

// noLinks ends a distribution whose links are unavailable: a warning, its
// recipients left as they were, and a growing wait before it is read again.
func (rs *runState) noLinks(ctx context.Context, u store.SyncUnit, cause error) error {
	warning := fmt.Sprintf("distribution %s: no links (%v); recipients left as they were", u.DistributionID, cause)
	rs.warn("%s", warning)
	maxWait := rs.in.VerifyEvery
	if maxWait <= 0 {
		maxWait = store.DefaultVerifyEvery
	}
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
