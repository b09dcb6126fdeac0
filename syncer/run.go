package syncer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Run kinds.
const (
	KindFull        = "full"
	KindIncremental = "incremental"
)

// Interrupted is the error of a run whose context ended (job timeout,
// shutdown): what it wrote is kept and the next run continues.
const Interrupted = "interrupted; will resume"

const maxWarnings = 100

// retryAfterFailure is how soon a failed run's kind is due again, at most its
// usual interval.
const retryAfterFailure = 5 * time.Minute

type runState struct {
	s      *Syncer
	in     store.Integration
	run    store.SyncRun
	client *qualtrics.Client
	full   bool
	notify bool
	start  time.Time

	changes     int
	capped      bool
	moreWarning int

	// mu guards what concurrent distributions update: logs, warnings,
	// counts and changes.
	mu   sync.Mutex
	logs []store.RequestLog
}

// RunNow works one queued (or resumed running) sync run of an integration
// without River and returns it finished. The error is for what could not be
// recorded (database down); a sync that fails is a failed run and a nil
// error. A run that is gone or already finished returns store.ErrNotFound.
func (s *Syncer) RunNow(ctx context.Context, integrationID string, runID int64) (store.SyncRun, error) {
	start := s.now()
	run, err := s.store.StartSyncRun(ctx, integrationID, runID, start)
	if err != nil {
		return run, fmt.Errorf("syncer: %w", err)
	}
	in, err := s.store.GetIntegration(ctx, integrationID)
	if err != nil {
		return run, fmt.Errorf("syncer: %w", err)
	}
	rs := &runState{s: s, in: in, run: run, start: start}
	rs.run.Warnings = nil
	if run.Kind == KindIncremental && in.FirstFullSyncAt == nil {
		// Incrementals compare with what a full sync stored: without one there
		// is nothing to compare with, so the run is a full one.
		if err := s.store.SetSyncRunKind(ctx, integrationID, runID, KindFull); err != nil {
			return run, fmt.Errorf("syncer: %w", err)
		}
		rs.run.Kind = KindFull
		rs.warn("run as a full sync: the integration has no successful full sync yet")
	}
	rs.full = rs.run.Kind == KindFull
	rs.notify = in.FirstFullSyncAt != nil

	syncErr := rs.setupClient()
	if syncErr == nil {
		syncErr = rs.walk(ctx)
	}
	if syncErr == nil && s.afterSync != nil {
		raised, err := s.afterSync(ctx, rs.in, rs.client, !rs.notify)
		rs.run.Notifications += raised
		if err != nil {
			rs.warn("after the sync: %v", err)
		}
	}
	return rs.finish(ctx, syncErr)
}

func (rs *runState) setupClient() error {
	c, err := rs.s.newClient(rs.in, rs.observe)
	rs.client = c
	return err
}

// Client builds a Qualtrics client for an integration with its own
// credential, for work outside a sync (removing event subscriptions of an
// integration being deleted).
func (s *Syncer) Client(in store.Integration) (*qualtrics.Client, error) {
	return s.newClient(in, nil)
}

func (s *Syncer) newClient(in store.Integration, observe func(qualtrics.RequestEvent)) (*qualtrics.Client, error) {
	secret, err := seal.OpenCredential(s.keyring, in.ID, in.SecretKeyID, in.SecretSealed)
	if err != nil {
		return nil, fmt.Errorf("open the integration's secret: %w", err)
	}
	cfg := qualtrics.Config{
		BaseURL:      in.BaseURL,
		AllowedHosts: s.allowed,
		Timeout:      time.Duration(in.RequestTimeoutSeconds) * time.Second,
		Observe:      observe,
	}
	if in.RateLimitEnabled {
		cfg.RequestsPerMinute = in.RequestsPerMinute
	}
	if in.AuthMethod == "oauth" {
		cfg.Auth.OAuth = &qualtrics.OAuthConfig{ClientID: in.OAuthClientID, ClientSecret: string(secret), Scope: in.OAuthScope}
	} else {
		cfg.Auth.Token = string(secret)
	}
	if s.clientConfig != nil {
		s.clientConfig(&cfg)
	}
	return qualtrics.New(cfg)
}

func (rs *runState) observe(ev qualtrics.RequestEvent) {
	if m := rs.s.metrics; m != nil {
		m.ObserveQualtricsCall(ev.Endpoint, outcome(ev.Status), ev.Retry)
	}
	if !rs.in.LoggingEnabled {
		return
	}
	runID := rs.run.ID
	rs.mu.Lock()
	rs.logs = append(rs.logs, store.RequestLog{
		At: rs.s.now().Add(-ev.Duration), SyncRunID: &runID, Method: ev.Method, Path: ev.Path, Status: ev.Status,
		DurationMS: int(ev.Duration.Milliseconds()), RequestID: ev.RequestID, ErrorCode: ev.ErrorCode,
	})
	rs.mu.Unlock()
}

func outcome(status int) string {
	switch {
	case status == 0:
		return "network_error"
	case status < 300:
		return "ok"
	case status == 429:
		return "rate_limited"
	case status < 500:
		return "client_error"
	}
	return "server_error"
}

// flushLogs writes the request log gathered since the last page. A failure to
// log does not fail the sync.
func (rs *runState) flushLogs(ctx context.Context) {
	rs.mu.Lock()
	logs := rs.logs
	rs.logs = nil
	rs.mu.Unlock()
	if len(logs) == 0 {
		return
	}
	if err := rs.s.store.InsertRequestLogs(ctx, rs.in.ID, logs); err != nil {
		rs.s.log.Warn("request log not written", zap.String("integrationId", rs.in.ID), zap.Error(err))
	}
}

func (rs *runState) warn(format string, args ...any) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.warnLocked(format, args...)
}

func (rs *runState) warnLocked(format string, args ...any) {
	if len(rs.run.Warnings) >= maxWarnings {
		rs.moreWarning++
		return
	}
	rs.run.Warnings = append(rs.run.Warnings, fmt.Sprintf(format, args...))
}

// pageTx is one page's transaction and the changes it reported, which count
// only once it commits.
type pageTx struct {
	rs         *runState
	tx         pgx.Tx
	changes    []store.Change
	raised     int
	recipients int
	warning    string
}

// page runs fn in one transaction. Pages of different distributions may run
// concurrently, each in its own transaction.
func (rs *runState) page(ctx context.Context, fn func(p *pageTx) error) error {
	if err := ctx.Err(); err != nil {
		return err // stop at a page boundary
	}
	p := &pageTx{rs: rs}
	err := rs.s.store.WithTx(ctx, func(tx pgx.Tx) error {
		p.tx = tx
		return fn(p)
	})
	if err == nil {
		rs.mu.Lock()
		rs.keep(p.changes, p.raised)
		rs.run.Recipients += p.recipients
		if p.warning != "" {
			rs.warnLocked("%s", p.warning)
		}
		rs.mu.Unlock()
	}
	rs.flushLogs(ctx)
	return err
}

// changed hands changes to the notifier inside the page's transaction.
func (p *pageTx) changed(ctx context.Context, changes []store.Change) error {
	if len(changes) == 0 {
		return nil
	}
	p.changes = append(p.changes, changes...)
	rs := p.rs
	if rs.notify && rs.s.notifier != nil {
		n, err := rs.s.notifier.OnChanges(ctx, p.tx, rs.in, changes, rs.s.now())
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		p.raised += n
	}
	return nil
}

func (rs *runState) keep(changes []store.Change, raised int) {
	rs.run.Notifications += raised
	rs.changes += len(changes)
	room := rs.s.maxChanges - len(rs.run.Changes)
	if len(changes) > room {
		changes = changes[:max(room, 0)]
		rs.capped = true
	}
	rs.run.Changes = append(rs.run.Changes, changes...)
}

func (rs *runState) walk(ctx context.Context) error {
	for page, err := range rs.client.Surveys(ctx) {
		if err != nil {
			return fmt.Errorf("list surveys: %w", err)
		}
		if err := rs.surveyPage(ctx, page); err != nil {
			return err
		}
	}
	if rs.full {
		return rs.page(ctx, func(p *pageTx) error {
			n, err := store.MarkSurveysDeletedTx(ctx, p.tx, rs.in.ID, rs.start, rs.s.now())
			if n > 0 {
				rs.s.log.Info("surveys gone from Qualtrics marked deleted", zap.String("integrationId", rs.in.ID), zap.Int64("surveys", n))
			}
			return err
		})
	}
	return nil
}

func (rs *runState) surveyPage(ctx context.Context, page []qualtrics.Survey) error {
	rs.run.Surveys += len(page)
	in := make([]store.SurveyInput, len(page))
	for i, sv := range page {
		in[i] = store.SurveyInput{ID: sv.ID, Name: sv.Name, OwnerID: sv.OwnerID, IsActive: sv.IsActive,
			CreationDate: sv.CreationDate, LastModified: sv.LastModified}
	}
	var res store.SurveyPage
	err := rs.page(ctx, func(p *pageTx) error {
		var err error
		if res, err = store.UpsertSurveysTx(ctx, p.tx, rs.in.ID, in, rs.s.now()); err != nil {
			return err
		}
		return p.changed(ctx, res.Changes)
	})
	if err != nil {
		return fmt.Errorf("write surveys: %w", err)
	}
	stale := set(res.NeedDetails)
	// Active surveys are synced a few at a time, each with its own
	// transactions: a survey is a chain of round trips that mostly waits.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rs.s.concurrency)
	for _, sv := range page {
		if !sv.IsActive || sv.ID == "" {
			continue
		}
		g.Go(func() error { return rs.survey(gctx, sv.ID, stale[sv.ID]) })
	}
	return g.Wait()
}

func (rs *runState) survey(ctx context.Context, surveyID string, staleDetails bool) error {
	moved, err := rs.distributions(ctx, surveyID)
	if err != nil {
		return err
	}
	// Response counts follow the distributions' figures, which the survey's
	// lastModified does not: read the details again when those moved.
	if rs.full || staleDetails || moved {
		return rs.details(ctx, surveyID)
	}
	return nil
}

func (rs *runState) details(ctx context.Context, surveyID string) error {
	d, err := rs.client.Survey(ctx, surveyID)
	switch {
	case qualtrics.IsNotFound(err):
		rs.warn("survey %s: details not found (deleted meanwhile?)", surveyID)
		return nil
	case err != nil:
		return fmt.Errorf("survey %s details: %w", surveyID, err)
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

// distributions syncs a survey's distributions and reports whether any is
// new or has new figures.
func (rs *runState) distributions(ctx context.Context, surveyID string) (moved bool, err error) {
	for page, err := range rs.client.Distributions(ctx, qualtrics.DistributionsQuery{SurveyID: surveyID}) {
		if qualtrics.IsNotFound(err) {
			rs.warn("survey %s: distributions not found (deleted meanwhile?)", surveyID)
			return moved, nil
		}
		if err != nil {
			return moved, fmt.Errorf("list distributions of %s: %w", surveyID, err)
		}
		m, err := rs.distributionPage(ctx, surveyID, page)
		if err != nil {
			return moved, err
		}
		moved = moved || m
	}
	if rs.full {
		err := rs.page(ctx, func(p *pageTx) error {
			_, err := store.MarkDistributionsDeletedTx(ctx, p.tx, rs.in.ID, surveyID, rs.start, rs.s.now())
			return err
		})
		if err != nil {
			return moved, fmt.Errorf("mark distributions of %s deleted: %w", surveyID, err)
		}
	}
	return moved, nil
}

func (rs *runState) distributionPage(ctx context.Context, surveyID string, page []qualtrics.Distribution) (moved bool, err error) {
	rs.mu.Lock()
	rs.run.Distributions += len(page)
	rs.mu.Unlock()
	in := make([]store.DistributionInput, len(page))
	for i := range page {
		in[i] = distributionInput(surveyID, &page[i])
	}
	var res store.DistributionPage
	err = rs.page(ctx, func(p *pageTx) error {
		var err error
		if res, err = store.UpsertDistributionsTx(ctx, p.tx, rs.in.ID, in, rs.s.now()); err != nil {
			return err
		}
		return p.changed(ctx, res.Changes)
	})
	if err != nil {
		return false, fmt.Errorf("write distributions of %s: %w", surveyID, err)
	}
	stale := set(res.StaleRecipients)
	now := rs.s.now()
	// The recipients of a page's distributions are read a few at a time: a
	// distribution is a chain of round trips to Qualtrics and PostgreSQL
	// that mostly waits.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rs.s.concurrency)
	for i := range in {
		d := &in[i]
		if !live(d, now) || (!rs.full && !stale[d.ID]) {
			continue
		}
		g.Go(func() error { return rs.recipients(gctx, d) })
	}
	return len(res.Changes) > 0, g.Wait()
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

// recipients reads one distribution's history and links into staging tables
// and merges them, all in one transaction: the join needs both sides, and a
// half-read distribution must not mark its other recipients deleted.
// readAheadRows is how many history and link rows of a distribution are
// read from Qualtrics before its transaction opens. The usual distribution
// fits: it is then written in a transaction that never waits on Qualtrics,
// and holds a connection only for the writes. Larger ones stream the rest
// inside the transaction, a page at a time.
const readAheadRows = 600

// pageSource is a paginated listing read ahead into memory, then drained.
type pageSource[T any] struct {
	next     func() ([]T, error, bool)
	buffered [][]T
	done     bool
	err      error
}

func newPageSource[T any](seq iter.Seq2[[]T, error]) (*pageSource[T], func()) {
	next, stop := iter.Pull2(seq)
	return &pageSource[T]{next: next}, stop
}

// pull reads the next page; false once the listing ended or failed (err).
func (ps *pageSource[T]) pull() ([]T, bool) {
	if ps.done {
		return nil, false
	}
	page, err, ok := ps.next()
	if !ok || err != nil {
		ps.done, ps.err = true, err
		return nil, false
	}
	return page, true
}

// fill buffers pages while the total stays under limit rows.
func (ps *pageSource[T]) fill(limit int, total *int) {
	for *total < limit {
		page, ok := ps.pull()
		if !ok {
			return
		}
		ps.buffered = append(ps.buffered, page)
		*total += len(page)
	}
}

// each hands every page to fn: the buffered ones, then the rest as they are
// read. It returns the listing's error, if any, after the pages before it.
func (ps *pageSource[T]) each(fn func([]T) error) error {
	for _, page := range ps.buffered {
		if err := fn(page); err != nil {
			return err
		}
	}
	ps.buffered = nil
	for {
		page, ok := ps.pull()
		if !ok {
			return ps.err
		}
		if err := fn(page); err != nil {
			return err
		}
	}
}

func (rs *runState) recipients(ctx context.Context, d *store.DistributionInput) error {
	history, stopHistory := newPageSource(rs.client.DistributionHistory(ctx, d.ID))
	defer stopHistory()
	links, stopLinks := newPageSource(rs.client.DistributionLinks(ctx, d.ID, d.SurveyID))
	defer stopLinks()
	total := 0
	history.fill(readAheadRows, &total)
	if history.done {
		links.fill(readAheadRows, &total)
	}
	if history.done && history.err != nil && !skippable(history.err) {
		return fmt.Errorf("recipients of %s: history of %s: %w", d.ID, d.ID, history.err)
	}
	if links.done && links.err != nil {
		if skippable(links.err) {
			// Without links there is no email to match users by; keep what is
			// stored rather than blank it.
			rs.warn("distribution %s: no links (%v); recipients left as they were", d.ID, links.err)
			return nil
		}
		return fmt.Errorf("recipients of %s: links of %s: %w", d.ID, d.ID, links.err)
	}

	err := rs.page(ctx, func(p *pageTx) error {
		b, err := store.BeginRecipientsTx(ctx, p.tx, rs.in.ID, d.ID, d.SurveyID)
		if err != nil {
			return err
		}
		warning := ""
		err = history.each(func(page []qualtrics.HistoryEntry) error {
			h := make([]store.HistoryInput, len(page))
			for i := range page {
				e := &page[i]
				h[i] = store.HistoryInput{ContactID: e.ContactID, ContactLookupID: e.ContactLookupID, Status: string(e.Status),
					SurveyLink: e.SurveyLink, ResponseID: e.ResponseID, SentAt: e.SentAt, OpenedAt: e.OpenedAt,
					ResponseStartedAt: e.ResponseStartedAt, ResponseCompletedAt: e.ResponseCompletedAt}
			}
			return b.AddHistory(ctx, h)
		})
		switch {
		case skippable(history.err) && errors.Is(err, history.err):
			// No XM Directory licence (404) or a test send (400): keep the
			// statuses stored, take email and links from links.
			warning = fmt.Sprintf("distribution %s: no history (%v); statuses kept as they were", d.ID, err)
			if err := b.KeepStoredHistory(ctx); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("history of %s: %w", d.ID, err)
		}
		err = links.each(func(page []qualtrics.Link) error {
			l := make([]store.LinkInput, len(page))
			for i := range page {
				e := &page[i]
				l[i] = store.LinkInput{ContactID: e.ContactID, Email: e.Email, FirstName: e.FirstName, LastName: e.LastName,
					Link: e.Link, LinkExpiration: e.LinkExpiration, Unsubscribed: e.Unsubscribed,
					ExceededContactFrequency: e.ExceededContactFrequency}
			}
			return b.AddLinks(ctx, l)
		})
		switch {
		case skippable(links.err) && errors.Is(err, links.err):
			rs.warn("distribution %s: no links (%v); recipients left as they were", d.ID, err)
			return errSkipDistribution
		case err != nil:
			return fmt.Errorf("links of %s: %w", d.ID, err)
		}
		m, err := b.Merge(ctx, rs.s.now(), func(ch []store.Change) error { return p.changed(ctx, ch) })
		if err != nil {
			return err
		}
		if err := store.SetRecipientsSyncedTx(ctx, p.tx, rs.in.ID, d.ID, warning, rs.s.now()); err != nil {
			return err
		}
		p.recipients = m.Recipients
		p.warning = warning
		return nil
	})
	if errors.Is(err, errSkipDistribution) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recipients of %s: %w", d.ID, err)
	}
	return nil
}

// skippable says a listing is unavailable for this distribution (no XM
// Directory licence, a test send) rather than failing.
func skippable(err error) bool { return qualtrics.IsNotFound(err) || qualtrics.IsBadRequest(err) }

var errSkipDistribution = errors.New("skip distribution")

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// finish records the run and the integration's bookkeeping in one transaction,
// on a context that outlives the job's so an interrupted run is recorded.
func (rs *runState) finish(ctx context.Context, syncErr error) (store.SyncRun, error) {
	now := rs.s.now()
	interrupted := syncErr != nil && ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs.flushLogs(ctx)

	run := &rs.run
	run.FinishedAt = &now
	if rs.client != nil {
		run.APICallsByEndpoint = rs.client.TakeStats()
	}
	run.APICalls = 0
	for _, n := range run.APICallsByEndpoint {
		run.APICalls += n
	}
	out := store.SyncOutcome{IntegrationID: rs.in.ID, At: now, SecretSealed: rs.in.SecretSealed}
	if rs.client != nil {
		if base, ok := rs.switchedBaseURL(); ok {
			out.BaseURL = base
			rs.warn("Qualtrics proxied the requests to another datacenter: base URL switched to %s", base)
		}
	}
	if rs.capped {
		rs.warn("%d changes found; only the first %d are stored on the run", rs.changes, len(run.Changes))
	}
	every := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	fullEvery, incrEvery := every(rs.in.FullSyncEvery, time.Hour), every(rs.in.IncrementalSyncEvery, 15*time.Minute)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	switch {
	case syncErr == nil:
		run.Status = "succeeded"
		out.Succeeded = true
		out.NextIncrementalSyncAt = at(incrEvery)
		if rs.full {
			out.FullSucceeded = true
			// Full syncs only start inside the window: the next one is due at the
			// window's next opening after a period has passed.
			next := NextInWindow(rs.in.FullSyncWindow, now.Add(fullEvery))
			out.NextFullSyncAt = &next
		}
	default:
		run.Status = "failed"
		retry := min(retryAfterFailure, fullEvery)
		if !rs.full {
			retry = min(retryAfterFailure, incrEvery)
		}
		switch {
		case interrupted:
			run.Error = Interrupted
			retry = 0
		case qualtrics.IsUnauthorized(syncErr):
			out.Unauthorized = true
			out.StatusMessage = fmt.Sprintf("Qualtrics rejected the integration's credentials (401). "+
				"Replace the token with PUT /api/v1/integrations/%s/token; syncs are stopped until then.", rs.in.ID)
			if rs.in.AuthMethod == "oauth" {
				out.StatusMessage = fmt.Sprintf("Qualtrics refused the integration's OAuth client. "+
					"Replace it with PATCH /api/v1/integrations/%s {\"oauth\": {…}}; syncs are stopped until then.", rs.in.ID)
			}
			run.Error = "unauthorized: " + syncErr.Error()
		default:
			run.Error = syncErr.Error()
		}
		if rs.full {
			out.NextFullSyncAt = at(retry)
		} else {
			out.NextIncrementalSyncAt = at(retry)
		}
	}
	if rs.moreWarning > 0 {
		run.Warnings = append(run.Warnings, fmt.Sprintf("%d more warnings not shown", rs.moreWarning))
	}
	err := rs.s.store.WithTx(ctx, func(tx pgx.Tx) error {
		if err := rs.s.store.FinishSyncRunTx(ctx, tx, *run); err != nil {
			return err
		}
		return store.RecordSyncOutcomeTx(ctx, tx, out)
	})
	if m := rs.s.metrics; m != nil {
		m.SyncFinished(run.Kind, run.Status, now.Sub(rs.start), rs.in.ID, now)
	}
	fields := []zap.Field{zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", run.ID), zap.String("kind", run.Kind),
		zap.String("status", run.Status), zap.Int("apiCalls", run.APICalls), zap.Int("surveys", run.Surveys),
		zap.Int("distributions", run.Distributions), zap.Int("recipients", run.Recipients), zap.Int("changes", rs.changes)}
	if syncErr != nil {
		fields = append(fields, zap.Error(syncErr))
	}
	rs.s.log.Info("sync finished", fields...)
	if err != nil {
		return *run, fmt.Errorf("syncer: record run: %w", err)
	}
	return *run, nil
}

// switchedBaseURL is the base URL on the host a "Request proxied" notice
// advised, when it differs from the stored one and passes the host policy.
func (rs *runState) switchedBaseURL() (string, bool) {
	host := rs.client.SuggestedHost()
	if host == "" {
		return "", false
	}
	u, err := url.Parse(rs.in.BaseURL)
	if err != nil || strings.EqualFold(u.Host, host) || strings.EqualFold(u.Hostname(), host) {
		return "", false
	}
	// A notice names a host without a port; a base URL with an explicit port
	// keeps it (Qualtrics' never has one).
	if u.Port() != "" && !strings.Contains(host, ":") {
		host += ":" + u.Port()
	}
	u.Host = host
	base, err := qualtrics.NormalizeBaseURL(u.String(), rs.s.allowed)
	if err != nil {
		rs.warn("Qualtrics advised host %q, which the host policy refuses; base URL kept", host)
		return "", false
	}
	return base, base != rs.in.BaseURL
}
