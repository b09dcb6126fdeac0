package syncer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Run phases: the survey listing, then the units it planned, then the end of
// the run (deletions, notification checks, bookkeeping).
const (
	phaseSurveys = "surveys"
	phaseUnits   = "units"
	phaseFinish  = "finish"
)

const maxWarnings = 100

// retryAfterFailure is how soon a failed run's kind is due again, at most its
// usual interval.
const retryAfterFailure = 5 * time.Minute

// errYield ends a job's slice of a run with work left: its time is up. What
// it did is committed and the next slice continues.
var errYield = errors.New("syncer: slice over, run continues")

type runState struct {
	s      *Syncer
	in     store.Integration
	run    store.SyncRun
	client *qualtrics.Client
	full   bool
	notify bool
	// readAll: the first full sync of the integration reads every live
	// distribution; later full syncs read what moved plus a rotating slice.
	readAll  bool
	start    time.Time // the run's first start, over all its slices
	deadline time.Time // when this slice stops starting work
	hardStop time.Time // when units stop waiting on Qualtrics and keep what they read

	capped      bool
	moreWarning int
	counted     bool // run.Progress holds the units counted at the end of the run

	// mu guards what concurrent units update: logs, warnings, counts and
	// changes.
	mu   sync.Mutex
	logs []store.RequestLog
}

// RunNow works a queued (or resumed running) sync run of an integration to
// its end without River, one slice after another, and returns it finished.
// The error is for what could not be recorded (database down) or a context
// that ended (the run is then left running, and continues when worked
// again); a sync that fails is a failed run and a nil error. A run that is
// gone or already finished returns store.ErrNotFound.
func (s *Syncer) RunNow(ctx context.Context, integrationID string, runID int64) (store.SyncRun, error) {
	for {
		run, done, err := s.WorkSlice(ctx, integrationID, runID)
		if err != nil || done {
			return run, err
		}
	}
}

// WorkSlice works one slice of a run: it starts units until its time budget
// (Options.SliceBudget) is spent, lets the ones started finish, and reports
// whether the run ended. Every unit's work is committed as it goes, so a
// slice cut short anywhere (a replica killed) loses at most the pages in
// flight; the next slice, on any replica, continues from the units' records.
//
// One job at a time works a run: the slice holds the run's advisory lock, and
// a second job (River rescued the first, whose replica is alive but slow)
// gets store.ErrRunBusy and tries again later.
func (s *Syncer) WorkSlice(ctx context.Context, integrationID string, runID int64) (store.SyncRun, bool, error) {
	release, err := s.store.HoldSyncRun(ctx, runID)
	if err != nil {
		return store.SyncRun{}, false, fmt.Errorf("syncer: %w", err)
	}
	defer release()
	start := s.now()
	in, err := s.store.GetIntegration(ctx, integrationID)
	if err != nil {
		return store.SyncRun{}, false, fmt.Errorf("syncer: %w", err)
	}
	run, err := s.store.BeginSyncRunJob(ctx, integrationID, runID, start, in.BaseURL)
	if err != nil {
		return run, false, fmt.Errorf("syncer: %w", err)
	}
	// Units stop waiting on Qualtrics at hardStop and keep what they read,
	// before the job's own timeout would throw it away.
	hardStop := start.Add(s.sliceBudget + max(0, s.jobTimeout-s.sliceBudget)/2)
	rs := &runState{s: s, in: in, run: run, start: start, deadline: start.Add(s.sliceBudget), hardStop: hardStop}
	if in.Status != microapps.IntegrationActive {
		// Paused (or stopped on an error) while the run was under way: it
		// stops here, keeping what it wrote.
		out, err := rs.finish(ctx, errStopped{status: in.Status})
		return out, true, err
	}
	if run.StartedAt != nil {
		rs.start = *run.StartedAt
	}
	if run.Kind == microapps.SyncIncremental && in.FirstFullSyncAt == nil {
		// Incrementals compare with what a full sync stored: without one there
		// is nothing to compare with, so the run is a full one.
		if err := s.store.SetSyncRunKind(ctx, integrationID, runID, microapps.SyncFull); err != nil {
			return run, false, fmt.Errorf("syncer: %w", err)
		}
		rs.run.Kind = microapps.SyncFull
		rs.warn("run as a full sync: the integration has no successful full sync yet")
	}
	rs.full = rs.run.Kind == microapps.SyncFull
	rs.notify = in.FirstFullSyncAt != nil
	rs.readAll = rs.full && in.FirstFullSyncAt == nil

	syncErr := rs.setupClient()
	if syncErr == nil {
		syncErr = rs.work(ctx)
	}
	if errors.Is(syncErr, errYield) || (syncErr != nil && ctx.Err() != nil) {
		// Time is up, or the job was stopped: keep the figures and hand over.
		if err := rs.saveProgress(ctx); err != nil {
			return rs.run, false, err
		}
		if ctx.Err() != nil {
			return rs.run, false, fmt.Errorf("syncer: run %d stopped, will continue: %w", runID, context.Cause(ctx))
		}
		return rs.run, false, nil
	}
	if syncErr != nil && !isSyncFailure(syncErr) {
		// The database failed us, not Qualtrics: nothing is lost, the job is
		// retried and continues.
		_ = rs.saveProgress(ctx)
		return rs.run, false, fmt.Errorf("syncer: run %d: %w", runID, syncErr)
	}
	if syncErr == nil {
		syncErr = rs.unitFailures(ctx)
	}
	if syncErr == nil {
		// The removal decision counts by index: statistics from before a
		// large brand's first sync would send it through the brand's rows.
		rs.analyze(ctx)
		if err := rs.decideRemovals(ctx); err != nil {
			_ = rs.saveProgress(ctx)
			return rs.run, false, fmt.Errorf("syncer: run %d: %w", runID, err)
		}
	}
	if syncErr == nil && s.afterSync != nil {
		raised, err := s.afterSync(ctx, rs.in, rs.client, !rs.notify)
		rs.run.Notifications += raised
		if err != nil {
			rs.warn("after the sync: %v", err)
		}
	}
	out, err := rs.finish(ctx, syncErr)
	return out, true, err
}

// saveProgress records the slice's figures on the run.
func (rs *runState) saveProgress(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs.flushLogs(ctx)
	rs.takeStats()
	if err := rs.s.store.SaveSyncRunProgress(ctx, rs.run); err != nil {
		return fmt.Errorf("syncer: save progress: %w", err)
	}
	if p, err := rs.s.store.RefreshSyncRunUnitCounts(ctx, rs.run.ID); err == nil {
		rs.run.Progress = p
	}
	return nil
}

// takeStats adds the client's calls since the last take to the run's.
func (rs *runState) takeStats() {
	if rs.client == nil {
		return
	}
	if rs.run.APICallsByEndpoint == nil {
		rs.run.APICallsByEndpoint = map[string]int{}
	}
	for k, n := range rs.client.TakeStats() {
		rs.run.APICallsByEndpoint[k] += n
	}
	noteDecodeWarnings(rs.client, rs.s.metrics, rs.warn)
	rs.run.APICalls = 0
	for _, n := range rs.run.APICallsByEndpoint {
		rs.run.APICalls += n
	}
}

// unitFailures fails the run when more than the failure budget of its units
// failed; below it, the failed units are warnings and the next run retries
// them.
func (rs *runState) unitFailures(ctx context.Context) error {
	p, err := rs.s.store.RefreshSyncRunUnitCounts(ctx, rs.run.ID)
	if err != nil {
		return fmt.Errorf("syncer: %w", err)
	}
	rs.run.Progress, rs.counted = p, true
	if p.UnitsFailed == 0 {
		return nil
	}
	if float64(p.UnitsFailed) > rs.s.failureBudget*float64(p.UnitsTotal) {
		return &syncFailure{fmt.Errorf("%d of %d units failed (more than the failure budget of %.0f%%); see the warnings",
			p.UnitsFailed, p.UnitsTotal, rs.s.failureBudget*100)}
	}
	return nil
}

// decideRemovals takes the run's one decision on what it found gone from
// Qualtrics (surveys, distributions, recipients): removed, or all of it held
// back by the integration's veto rule. It is taken once, with the removals,
// in one transaction: a slice killed after it keeps it.
func (rs *runState) decideRemovals(ctx context.Context) error {
	would, vetoed, err := rs.s.store.DecideRemovals(ctx, rs.in.ID, rs.run.ID, rs.full, rs.in.Veto, rs.s.now())
	if err != nil {
		return err
	}
	rs.run.Removals, rs.run.Vetoed = would, vetoed
	rule := rs.in.Veto
	if rule.MaxDeletePercent <= 0 {
		rule = microapps.DefaultVetoRule
	}
	switch {
	case vetoed:
		rs.warn("vetoed: this run would have removed %d surveys, %d distributions and %d recipients, more than %d%% of "+
			"the integration's live rows of a kind and more than %d rows; nothing was removed. If Qualtrics really no longer "+
			"has them, run a full sync with overrideVeto (or raise the limit); if not, check the service account's access "+
			"to the projects in Qualtrics", would.Surveys, would.Distributions, would.Recipients, rule.MaxDeletePercent, rule.MinRows)
		rs.s.log.Warn("sync vetoed", zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", rs.run.ID),
			zap.Int64("surveys", would.Surveys), zap.Int64("distributions", would.Distributions), zap.Int64("recipients", would.Recipients))
		if m, ok := rs.s.metrics.(VetoMetrics); ok {
			m.SyncVetoed(rs.run.Kind, rs.in.ID)
		}
	case would != (store.Removals{}):
		rs.s.log.Info("removed what Qualtrics no longer lists", zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", rs.run.ID),
			zap.Int64("surveys", would.Surveys), zap.Int64("distributions", would.Distributions), zap.Int64("recipients", would.Recipients),
			zap.Bool("overrideVeto", rs.run.OverrideVeto))
	}
	return nil
}

// syncFailure is a failure on Qualtrics' side (an API error, a network
// error, a page that would not decode): it fails a unit or the run. Any
// other error (the database) fails only the slice, which is retried.
type syncFailure struct{ err error }

func (f *syncFailure) Error() string { return f.err.Error() }
func (f *syncFailure) Unwrap() error { return f.err }

func qfail(format string, args ...any) error { return &syncFailure{fmt.Errorf(format, args...)} }

// errStopped ends a run whose integration is no longer active.
type errStopped struct{ status microapps.IntegrationStatus }

func (e errStopped) Error() string {
	return fmt.Sprintf("stopped: the integration was set to %s during the run; what was read so far is kept", e.status)
}

func isSyncFailure(err error) bool {
	var f *syncFailure
	// The brand budget failing (its table in PostgreSQL) is the database's
	// failure, not Qualtrics': the slice is retried, no unit fails for it.
	return errors.As(err, &f) && !qualtrics.IsLimiterError(err)
}

func (rs *runState) setupClient() error {
	c, err := rs.s.newClient(rs.in, rs.observe, rs.s.brandLimiter(rs.in))
	if err != nil {
		return &syncFailure{err}
	}
	rs.client = c
	return nil
}

// Client builds a Qualtrics client for an integration with its own
// credential, for work outside a sync (removing event subscriptions of an
// integration being deleted).
func (s *Syncer) Client(in store.Integration) (*qualtrics.Client, error) {
	return s.newClient(in, nil, s.brandLimiter(in))
}

func (s *Syncer) newClient(in store.Integration, observe func(qualtrics.RequestEvent), limiter qualtrics.Limiter) (*qualtrics.Client, error) {
	secret, err := seal.OpenCredential(s.keyring, in.ID, in.SecretKeyID, in.SecretSealed)
	if err != nil {
		return nil, fmt.Errorf("open the integration's secret: %w", err)
	}
	cfg := qualtrics.Config{
		BaseURL:      in.BaseURL,
		AllowedHosts: s.allowed,
		Timeout:      time.Duration(in.RequestTimeoutSeconds) * time.Second,
		Observe:      observe,
		Limiter:      limiter,
	}
	if in.RateLimitEnabled {
		cfg.RequestsPerMinute = in.RequestsPerMinute
	}
	if in.AuthMethod == microapps.AuthOAuth {
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
	room := rs.s.maxChanges - len(rs.run.Changes)
	if len(changes) > room {
		changes = changes[:max(room, 0)]
		rs.capped = true
	}
	rs.run.Changes = append(rs.run.Changes, changes...)
}

// finish records the run and the integration's bookkeeping in one transaction,
// on a context that outlives the job's so an interrupted run is recorded.
func (rs *runState) finish(ctx context.Context, syncErr error) (store.SyncRun, error) {
	now := rs.s.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs.flushLogs(ctx)
	if !rs.counted {
		if p, err := rs.s.store.RefreshSyncRunUnitCounts(ctx, rs.run.ID); err == nil {
			rs.run.Progress = p
		}
	}

	run := &rs.run
	run.FinishedAt = &now
	rs.takeStats()
	startBase := rs.run.BaseURL
	if startBase == "" {
		startBase = rs.in.BaseURL
	}
	out := store.SyncOutcome{IntegrationID: rs.in.ID, At: now, SecretSealed: rs.in.SecretSealed, StartBaseURL: startBase,
		StartedAt: rs.start}
	// An admin who changed the base URL during the run has the last word.
	if rs.client != nil && (rs.run.BaseURL == "" || rs.run.BaseURL == rs.in.BaseURL) {
		if base, ok := rs.switchedBaseURL(); ok {
			out.BaseURL = base
			rs.warn("Qualtrics proxied the requests to another datacenter: base URL switched to %s", base)
		}
	}
	if rs.capped {
		rs.warn("more changes found than the %d stored on the run", len(run.Changes))
	}
	// The failed units' warnings come from the units, where each failure was
	// recorded as it happened: a slice killed since loses none.
	if units, errs, err := rs.s.store.FailedSyncUnits(ctx, run.ID); err == nil {
		for i := range units {
			rs.warn("%s", unitWarning(units[i], errs[i]))
		}
	} else {
		rs.s.log.Warn("failed units not read for the run's warnings", zap.Int64("syncRunId", run.ID), zap.Error(err))
	}
	sched := rs.in.Schedule.Effective()
	fullEvery, incrEvery := sched.FullSyncEvery, sched.IncrementalSyncEvery
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	switch {
	case syncErr == nil:
		run.Status = microapps.RunSucceeded
		out.Succeeded = true
		out.NextIncrementalSyncAt = at(incrEvery)
		if rs.full {
			out.FullSucceeded = true
			// Full syncs only start inside the window: the next one is due at the
			// window's next opening after a period has passed.
			next := rs.in.FullSyncWindow.NextOpen(now.Add(fullEvery))
			out.NextFullSyncAt = &next
		}
	default:
		run.Status = microapps.RunFailed
		// Failures in a row wait twice as long each time (5, 10, 20 minutes…),
		// at most the kind's own period: a brand that keeps failing is not
		// hammered every five minutes.
		failures, err := rs.s.store.FailedRunsInARow(ctx, rs.in.ID)
		if err != nil {
			failures = 0
		}
		retry := retryAfterFailure << min(failures, 6)
		if rs.full {
			retry = min(retry, fullEvery)
		} else {
			retry = min(retry, incrEvery)
		}
		switch {
		case qualtrics.IsUnauthorized(syncErr):
			out.Unauthorized = true
			out.StatusMessage = fmt.Sprintf("Qualtrics rejected the integration's credentials (401). "+
				"Replace the token with PUT /api/v1/integrations/%s/token; syncs are stopped until then.", rs.in.ID)
			if rs.in.AuthMethod == microapps.AuthOAuth {
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
	// Counted as soon as it is visible: the clean-up and the analysis below
	// take seconds on a busy database, and a scrape meanwhile must not see a
	// finished run without its metric.
	if m := rs.s.metrics; m != nil {
		m.SyncFinished(run.Kind, run.Status, now.Sub(rs.start), rs.in.ID, now)
	}
	if err == nil {
		// The plan and what it staged are of no use once the run ended.
		if derr := rs.s.store.DeleteSyncUnits(ctx, run.ID); derr != nil {
			rs.s.log.Warn("sync plan not deleted", zap.Int64("syncRunId", run.ID), zap.Error(derr))
		}
		rs.analyze(ctx)
	}
	fields := []zap.Field{zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", run.ID), zap.String("kind", string(run.Kind)),
		zap.String("status", string(run.Status)), zap.Int("apiCalls", run.APICalls), zap.Int("surveys", run.Surveys),
		zap.Int("distributions", run.Distributions), zap.Int("recipients", run.Recipients), zap.Int("units", run.Progress.UnitsTotal),
		zap.Int("unitsFailed", run.Progress.UnitsFailed), zap.Int("jobs", run.Progress.Jobs)}
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

// syncedTables are the tables a sync writes in bulk.
var syncedTables = []string{"surveys", "distributions", "distribution_stats", "recipients", "notifications", "deliveries"}

// analyze refreshes the planner's statistics of the synced tables that
// changed much since they were last analyzed (a tenth of their rows, or
// never analyzed), as after a large brand's first full sync:
// autovacuum comes late or never, and pages planned on statistics from
// before the brand arrived are several times slower. Small runs, the usual
// ones, change too little to pay for it.
func (rs *runState) analyze(ctx context.Context) {
	tables, took, err := rs.s.store.AnalyzeIfChanged(ctx, syncedTables...)
	if err != nil {
		rs.s.log.Warn("analyze after sync failed", zap.String("integrationId", rs.in.ID), zap.Error(err))
		return
	}
	if len(tables) > 0 {
		rs.s.log.Info("analyzed tables after sync", zap.String("integrationId", rs.in.ID), zap.Int64("syncRunId", rs.run.ID),
			zap.Strings("tables", tables), zap.Duration("took", took))
	}
}
