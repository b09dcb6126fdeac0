package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// readAheadRows is how many history and link rows of a distribution are held
// in memory before its pages are staged in the database instead. The usual
// distribution fits and is written in one short transaction once both
// listings are read; a larger one stages each page in a short transaction of
// its own (never a transaction across a call to Qualtrics), records where
// its listings stand, and is merged from the staged pages at the end, which
// lets a distribution of any size be read over several slices.
const readAheadRows = 600

// progressEvery is how often a slice counts its run's units onto the run.
const progressEvery = 3 * time.Second

// surveyLanes is how many survey units run beside recipients units.
const surveyLanes = 2

// work runs the run's phases from where it stands.
func (rs *runState) work(ctx context.Context) error {
	if rs.run.Progress.Phase == phaseSurveys || rs.run.Progress.Phase == "" {
		if err := rs.surveys(ctx); err != nil {
			return err
		}
		rs.run.Progress.Phase = phaseUnits
	}
	if rs.run.Progress.Phase == phaseUnits {
		if err := rs.units(ctx); err != nil {
			return err
		}
		if err := rs.s.store.WithTx(ctx, func(tx pgx.Tx) error { return store.SetSyncRunPhaseTx(ctx, tx, rs.run.ID, phaseFinish) }); err != nil {
			return err
		}
		rs.run.Progress.Phase = phaseFinish
	}
	return nil
}

// surveys reads the survey listing, writes it a page at a time and plans one
// unit per active survey. A full sync then marks deleted the surveys the
// complete listing no longer holds.
func (rs *runState) surveys(ctx context.Context) error {
	for page, err := range rs.client.Surveys(ctx) {
		if err != nil {
			return qfail("list surveys: %w", err)
		}
		rs.run.Surveys += len(page)
		in := make([]store.SurveyInput, len(page))
		for i, sv := range page {
			in[i] = store.SurveyInput{ID: sv.ID, Name: sv.Name, OwnerID: sv.OwnerID, IsActive: sv.IsActive,
				CreationDate: sv.CreationDate, LastModified: sv.LastModified}
		}
		err := rs.page(ctx, func(p *pageTx) error {
			res, err := store.UpsertSurveysTx(ctx, p.tx, rs.in.ID, in, rs.s.now())
			if err != nil {
				return err
			}
			stale := set(res.NeedDetails)
			var units []store.SyncUnit
			for _, sv := range page {
				if sv.IsActive && sv.ID != "" {
					units = append(units, store.SyncUnit{Key: store.UnitKey(store.UnitSurvey, sv.ID), Kind: store.UnitSurvey,
						SurveyID: sv.ID, NeedDetails: rs.full || stale[sv.ID]})
				}
			}
			if _, err := store.AddSyncUnitsTx(ctx, p.tx, rs.run.ID, units); err != nil {
				return err
			}
			return p.changed(ctx, res.Changes)
		})
		if err != nil {
			return fmt.Errorf("write surveys: %w", err)
		}
	}
	if rs.full {
		if err := rs.historyBack(ctx); err != nil {
			return err
		}
	}
	// The surveys the listing no longer holds are removed at the end of the
	// run, with everything else it finds gone, unless the veto holds them
	// back (DecideRemovals).
	return rs.page(ctx, func(p *pageTx) error {
		return store.SetSyncRunPhaseTx(ctx, p.tx, rs.run.ID, phaseUnits)
	})
}

// historyBack asks Qualtrics, once per full sync, for the history of one
// distribution whose history was unavailable (no XM Directory licence): when
// it answers, every such distribution of the integration is read again in
// this run; until then none is re-read for it.
func (rs *runState) historyBack(ctx context.Context) error {
	id, err := rs.s.store.HistoryUnavailableSample(ctx, rs.in.ID)
	if err != nil || id == "" {
		return err
	}
	if _, _, err := rs.client.DistributionHistoryPage(ctx, id, ""); err != nil {
		if !skippable(err) {
			rs.warn("distribution %s: could not learn whether its history is available again: %v", id, err)
		}
		return nil
	}
	n, err := rs.s.store.HistoryAvailableAgain(ctx, rs.in.ID)
	if err == nil {
		rs.s.log.Info("distribution history available again", zap.String("integrationId", rs.in.ID), zap.Int64("distributions", n))
	}
	return err
}

// units works the run's pending units, Options.Concurrency at a time (a unit
// is a chain of round trips that mostly waits), until none is left or the
// slice's time is up. Survey units come first: they plan the recipients units.
func (rs *runState) units(ctx context.Context) error {
	type result struct {
		key string
		err error
	}
	done := make(chan result)
	inflight := map[string]string{} // key → kind
	var fatal error
	yielded := false
	wait := func() {
		r := <-done
		delete(inflight, r.key)
		switch {
		case r.err == nil:
		case errors.Is(r.err, errYield):
			yielded = true
		case fatal == nil:
			fatal = r.err
		}
	}
	started := false // every slice starts at least one batch, however short its budget
	refreshed := time.Now()
	for {
		if time.Since(refreshed) > progressEvery {
			// The run's progress for the console and the API, now and then.
			_, _ = rs.s.store.RefreshSyncRunUnitCounts(ctx, rs.run.ID)
			refreshed = time.Now()
		}
		if fatal != nil || ctx.Err() != nil || (started && !rs.s.now().Before(rs.deadline)) {
			break
		}
		room := rs.s.concurrency - len(inflight)
		if room <= 0 {
			wait()
			continue
		}
		skip := make([]string, 0, len(inflight))
		surveys := 0
		for k, kind := range inflight {
			skip = append(skip, k)
			if kind == store.UnitSurvey {
				surveys++
			}
		}
		// Recipients units spend the scarce history and links budget, and
		// keeping them going is what bounds the run; a couple of survey units
		// run beside them (surveyLanes), to keep planning recipients units
		// while those are read, and all of them when nothing else is left.
		pending, err := rs.s.store.PendingSyncUnits(ctx, rs.run.ID, store.UnitSurvey, min(room, max(0, surveyLanes-surveys)), skip)
		if err == nil && len(pending) < room {
			var more []store.SyncUnit
			more, err = rs.s.store.PendingSyncUnits(ctx, rs.run.ID, store.UnitRecipients, room-len(pending), skip)
			pending = append(pending, more...)
		}
		if err == nil && len(pending) < room {
			for _, u := range pending {
				skip = append(skip, u.Key)
			}
			var more []store.SyncUnit
			more, err = rs.s.store.PendingSyncUnits(ctx, rs.run.ID, store.UnitSurvey, room-len(pending), skip)
			pending = append(pending, more...)
		}
		if err != nil {
			fatal = err
			break
		}
		if len(pending) == 0 {
			if len(inflight) == 0 {
				break
			}
			wait()
			continue
		}
		started = true
		for _, u := range pending {
			inflight[u.Key] = u.Kind
			go func() { done <- result{u.Key, rs.unit(ctx, u)} }()
		}
	}
	for len(inflight) > 0 {
		wait()
	}
	if fatal != nil {
		return fatal
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if yielded || !rs.s.now().Before(rs.deadline) {
		left, err := rs.s.store.PendingSyncUnits(ctx, rs.run.ID, "", 1, nil)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return errYield
		}
	}
	return nil
}

// unit works one unit. A failure on Qualtrics' side, or a row the database
// refuses (class 22 or 23: a value it cannot store), fails the unit: its
// error is kept on the unit (the run's warnings are built from them), a
// distribution backs off before it is read again, and the run goes on. An
// unauthorized credential fails the run. A unit another worker took over is
// left to it. Anything else (the database, the context) ends the slice.
func (rs *runState) unit(ctx context.Context, u store.SyncUnit) error {
	var err error
	if u.Kind == store.UnitSurvey {
		err = rs.survey(ctx, u)
	} else {
		err = rs.recipients(ctx, &u)
	}
	if errors.Is(err, store.ErrUnitLost) && u.Kind == store.UnitRecipients && ctx.Err() == nil {
		// Lost to nobody: the unit is still pending at the cursor this
		// worker holds, so what is staged does not match it (pages lost). It
		// stalls, and fails after maxStalls rather than being picked again
		// forever; its pages are not kept.
		if unmoved, uerr := rs.s.store.SyncUnitUnmoved(ctx, u); uerr != nil {
			return uerr
		} else if unmoved {
			if err = rs.stalled(ctx, u); !errors.Is(err, errYield) {
				err = fmt.Errorf("%w: %w", errStagingMismatch, err)
			}
		}
	}
	switch {
	case err == nil || errors.Is(err, errYield) || ctx.Err() != nil || qualtrics.IsUnauthorized(err):
		return err
	case errors.Is(err, store.ErrUnitLost):
		rs.s.log.Warn("sync unit taken over by another worker; left to it", zap.String("integrationId", rs.in.ID),
			zap.Int64("syncRunId", rs.run.ID), zap.String("unit", u.Key))
		return nil
	case !isSyncFailure(err) && !isDataError(err):
		return err
	}
	rs.s.log.Warn("sync unit failed", zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", rs.run.ID),
		zap.String("unit", u.Key), zap.Error(err))
	maxWait := rs.in.Schedule.Effective().VerifyEvery
	return rs.page(ctx, func(p *pageTx) error {
		if u.Kind == store.UnitRecipients {
			if err := store.RecipientsFailedTx(ctx, p.tx, rs.in.ID, u.DistributionID, unitWarning(u, err.Error()),
				failureBackoff, maxWait, rs.s.now()); err != nil {
				return err
			}
			if u.Staged && isSyncFailure(err) && !errors.Is(err, qualtrics.ErrPaginationLoop) && !errors.Is(err, errStagingMismatch) {
				// What it read is kept: the next run goes on from there.
				return store.FailRecipientsUnitKeepingPagesTx(ctx, p.tx, rs.in.ID, u, err.Error(), rs.s.now())
			}
		}
		return store.FinishSyncUnitTx(ctx, p.tx, u, store.UnitFailed, err.Error())
	})
}

// errStagingMismatch fails a unit whose staged pages do not match its cursor.
var errStagingMismatch = errors.New("its staged pages do not match its cursor; read again from the first page")

// failureBackoff is how long a distribution whose unit failed waits before a
// run reads it again, doubled at each failure in a row, at most its verify
// period: a distribution that keeps failing does not spend the brand's budget
// on every incremental.
const failureBackoff = 2 * time.Minute

// unitWarning is the run's warning for a failed unit.
func unitWarning(u store.SyncUnit, errText string) string {
	what := "survey " + u.SurveyID
	if u.Kind == store.UnitRecipients {
		what = "distribution " + u.DistributionID
	}
	return fmt.Sprintf("%s: %s; kept what was stored, a later run tries again", what, errText)
}

// isDataError says the database refused a value (class 22, data exception:
// a NUL byte, an invalid date) or a row (class 23, integrity): retrying the
// same unit gives the same answer.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	return errors.Is(err, store.ErrConflict)
}

// survey reads a survey's details (first, so that notices of its new
// distributions carry its due date), then its distribution listing a page at
// a time: each page is written, and the recipients units of its live
// distributions to read are planned with the unit's cursor, so a listing of
// thousands of distributions goes on over slices from where it stopped.
func (rs *runState) survey(ctx context.Context, u store.SyncUnit) error {
	if u.NeedDetails && !u.DetailsRead {
		if err := rs.details(ctx, u.SurveyID); err != nil {
			return err
		}
		u.DetailsRead = true // saved with the first page's cursor
	}
	sched := rs.in.Schedule.Effective()
	verifyEvery, slack := sched.VerifyEvery, sched.FullSyncEvery
	// The first full sync reads every live distribution once: those never
	// read, and those that moved since. An attempt that failed keeps what it
	// finished; the next one does not read it again.
	verify := rs.full && !rs.readAll
	// Calls stop at the slice's hard stop, like a recipients unit's.
	cctx, cancel := context.WithDeadline(ctx, rs.hardStop)
	defer cancel()
	q := qualtrics.DistributionsQuery{SurveyID: u.SurveyID}
	listed := true
	seen := map[string]bool{u.ListingNext: u.ListingNext != ""}
	for pages := 0; ; pages++ {
		if pages > 0 && !rs.s.now().Before(rs.deadline) {
			return errYield
		}
		page, next, err := rs.client.DistributionsPage(cctx, q, u.ListingNext)
		if err != nil && cctx.Err() != nil && ctx.Err() == nil {
			if pages == 0 {
				return rs.stalled(ctx, u)
			}
			return errYield
		}
		if qualtrics.IsBadRequest(err) && u.ListingNext != "" && pages == 0 {
			// The cursor an earlier slice saved is refused (an expired
			// skipToken): list again from the first page.
			v := u
			v.ListingNext = ""
			if err := rs.page(ctx, func(p *pageTx) error { return store.SaveSurveyUnitCursorTx(ctx, p.tx, u, v) }); err != nil {
				return err
			}
			u, seen = v, map[string]bool{}
			continue
		}
		if qualtrics.IsNotFound(err) {
			rs.warn("survey %s: distributions not found (deleted meanwhile?)", u.SurveyID)
			listed = false
			break
		}
		if err != nil {
			return qfail("list distributions of %s: %w", u.SurveyID, err)
		}
		if seen[next] {
			return qfail("list distributions of %s: %w (a page named an earlier one as next)", u.SurveyID, qualtrics.ErrPaginationLoop)
		}
		seen[next] = next != ""
		rs.mu.Lock()
		rs.run.Distributions += len(page)
		rs.mu.Unlock()
		now := rs.s.now()
		in := make([]store.DistributionInput, len(page))
		var liveIDs []string
		for i := range page {
			in[i] = distributionInput(u.SurveyID, &page[i])
			if live(&in[i], now) {
				liveIDs = append(liveIDs, in[i].ID)
			}
		}
		var moved []string
		anyMoved := false
		err = rs.page(ctx, func(p *pageTx) error {
			res, err := store.UpsertDistributionsTx(ctx, p.tx, rs.in.ID, in, now)
			if err != nil {
				return err
			}
			anyMoved, moved = len(res.Changes) > 0, res.StaleRecipients
			return p.changed(ctx, res.Changes)
		})
		if err != nil {
			return fmt.Errorf("write distributions of %s: %w", u.SurveyID, err)
		}
		// What moved is kept on the distributions (their recipients read
		// time cleared), so a page read again after a crash plans the same.
		read, err := rs.s.store.RecipientsToRead(ctx, rs.in.ID, liveIDs, moved, verify, verifyEvery, slack, now)
		if err != nil {
			return err
		}
		units := make([]store.SyncUnit, len(read))
		for i, id := range read {
			units[i] = store.SyncUnit{Key: store.UnitKey(store.UnitRecipients, id), Kind: store.UnitRecipients,
				SurveyID: u.SurveyID, DistributionID: id}
		}
		v := u
		v.ListingNext = next
		// Response counts follow the distributions' figures, which the
		// survey's lastModified does not: read the details again when those
		// moved.
		v.DetailsDue = u.DetailsDue || anyMoved && !u.DetailsRead
		err = rs.page(ctx, func(p *pageTx) error {
			if _, err := store.AddSyncUnitsTx(ctx, p.tx, rs.run.ID, units); err != nil {
				return err
			}
			// A distribution whose read failed part-way goes on from there.
			if _, err := store.ResumeRecipientsUnitsTx(ctx, p.tx, rs.in.ID, rs.run.ID, read, now.Add(-store.ResumeRetention)); err != nil {
				return err
			}
			return store.SaveSurveyUnitCursorTx(ctx, p.tx, u, v)
		})
		if err != nil {
			return err
		}
		u = v
		if next == "" {
			break
		}
	}
	if u.DetailsDue {
		if err := rs.details(ctx, u.SurveyID); err != nil {
			return err
		}
	}
	return rs.page(ctx, func(p *pageTx) error {
		if rs.full && listed {
			// Its unseen distributions are removed at the end of the run.
			if err := store.SetSurveyUnitListedTx(ctx, p.tx, u); err != nil {
				return err
			}
		}
		return store.FinishSyncUnitTx(ctx, p.tx, u, store.UnitDone, "")
	})
}

func (rs *runState) details(ctx context.Context, surveyID string) error {
	d, err := rs.client.Survey(ctx, surveyID)
	switch {
	case qualtrics.IsNotFound(err):
		rs.warn("survey %s: details not found (deleted meanwhile?)", surveyID)
		return nil
	case err != nil:
		return qfail("survey %s details: %w", surveyID, err)
	}
	err = rs.page(ctx, func(p *pageTx) error {
		return store.SetSurveyDetailsTx(ctx, p.tx, rs.in.ID, store.SurveyDetails{
			ID: surveyID, StartDate: d.Expiration.StartDate, EndDate: d.Expiration.EndDate,
			ResponsesAuditable: d.ResponseCounts.Auditable, ResponsesGenerated: d.ResponseCounts.Generated,
			ResponsesDeleted: d.ResponseCounts.Deleted,
		}, rs.s.now())
	})
	if err != nil {
		return fmt.Errorf("write survey %s details: %w", surveyID, err)
	}
	return nil
}

// live distributions are the ones whose recipients matter: not test sends,
// and links not yet expired.
func live(d *store.DistributionInput, now time.Time) bool {
	if d.ID == "" || d.RequestType == string(qualtrics.RequestTestEmail) {
		return false
	}
	return d.LinkExpiration.IsZero() || d.LinkExpiration.After(now)
}

func distributionInput(surveyID string, d *qualtrics.Distribution) store.DistributionInput {
	if d.SurveyLink.SurveyID != "" {
		surveyID = d.SurveyLink.SurveyID
	}
	st := d.Stats
	return store.DistributionInput{
		ID: d.ID, SurveyID: surveyID, ParentDistributionID: d.ParentDistributionID, OwnerID: d.OwnerID,
		OrganizationID: d.OrganizationID, RequestStatus: d.RequestStatus, RequestType: string(d.RequestType),
		SendDate: d.SendDate, CreatedDate: d.CreatedDate, ModifiedDate: d.ModifiedDate,
		FromEmail: d.Headers.FromEmail, ReplyToEmail: d.Headers.ReplyToEmail, FromName: d.Headers.FromName,
		Subject: d.Headers.Subject, MailingListID: d.Recipients.MailingListID, ContactID: d.Recipients.ContactID,
		LibraryID: d.Recipients.LibraryID, SampleID: d.Recipients.SampleID, LinkType: d.SurveyLink.LinkType,
		LinkExpiration: d.SurveyLink.ExpirationDate,
		Stats: store.DistributionStats{Sent: st.Sent, Failed: st.Failed, Started: st.Started, Bounced: st.Bounced,
			Opened: st.Opened, Skipped: st.Skipped, Finished: st.Finished, Complaints: st.Complaints, Blocked: st.Blocked},
	}
}

// skippable says a listing is unavailable for this distribution (no XM
// Directory licence, a test send) rather than failing.
func skippable(err error) bool { return qualtrics.IsNotFound(err) || qualtrics.IsBadRequest(err) }

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
