package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

// PurgeArgs is the periodic purge.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "purge" }

// RemoveIntegrationArgs removes the data of an integration deleted through
// the API, in batches (store.RemoveDeletedIntegration).
type RemoveIntegrationArgs struct {
	IntegrationID string `json:"integrationId"`
}

// Kind implements river.JobArgs.
func (RemoveIntegrationArgs) Kind() string { return "remove_integration" }

// InsertOpts: one removal per integration at a time.
func (RemoveIntegrationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Register adds the purge and removal workers.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &purgeWorker{s: s})
	river.AddWorker(workers, &removeIntegrationWorker{s: s})
}

// PurgeEvery is how often the purge runs (and once when a replica starts).
const PurgeEvery = 10 * time.Minute

// PeriodicJobs returns the purge, unique by period across replicas.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(PurgeEvery), func() (river.JobArgs, *river.InsertOpts) {
		return PurgeArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: PurgeEvery}}
	}, &river.PeriodicJobOpts{ID: "purge", RunOnStart: true})}
}

// purgeWorker enforces retention (store.Purge: request logs, sessions,
// notifications with their deliveries, sync runs, events, what syncs marked
// deleted a month ago), in batches, and queues the removal of any deleted
// integration whose data is still there (a removal job lost, or queued by an
// older version).
type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	s *Service
}

// Timeout: batches of a few thousand rows, repeated until done; the first
// purge of a large backlog may take minutes. An interrupted purge keeps what
// it deleted and the next one continues.
func (w *purgeWorker) Timeout(*river.Job[PurgeArgs]) time.Duration { return 30 * time.Minute }

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	return w.s.Purge(ctx)
}

// Purge runs one purge (what the periodic job does).
func (s *Service) Purge(ctx context.Context) error {
	start := time.Now()
	// Retention counts on the database's clock's side of the world: real
	// time, not Options.Now (which a test may move for the pages' sake).
	r, err := s.o.Store.Purge(ctx, time.Now())
	for table, n := range r.ByTable() {
		s.o.Metrics.Purged(table, n)
	}
	if err != nil {
		return err
	}
	s.o.Log.Info("purged", zap.Int64("rows", r.Rows()), zap.Int64("requestLogs", r.RequestLogs), zap.Int64("sessions", r.Sessions),
		zap.Int64("notifications", r.Notifications), zap.Int64("syncRuns", r.SyncRuns), zap.Int64("events", r.Events),
		zap.Int64("recipients", r.Recipients), zap.Strings("analyzed", r.Analyzed), zap.Duration("took", time.Since(start)))
	ids, err := s.o.Store.DeletedIntegrationIDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	return s.queueRemovals(ctx, s.o.Jobs, ids)
}

type removeIntegrationWorker struct {
	river.WorkerDefaults[RemoveIntegrationArgs]
	s *Service
}

// Timeout: a 1,000,000-recipient integration takes minutes (see README's
// scale benchmark); past this the job is retried and continues where it
// stopped.
func (w *removeIntegrationWorker) Timeout(*river.Job[RemoveIntegrationArgs]) time.Duration {
	return time.Hour
}

func (w *removeIntegrationWorker) Work(ctx context.Context, job *river.Job[RemoveIntegrationArgs]) error {
	return w.s.Remove(ctx, job.Args.IntegrationID)
}

// Remove removes a deleted integration's data (what the removal job does);
// nothing when it is removed already or not deleted.
func (s *Service) Remove(ctx context.Context, integrationID string) error {
	start := time.Now()
	r, err := s.o.Store.RemoveDeletedIntegration(ctx, integrationID)
	s.o.Metrics.Purged("recipients", r.Recipients)
	s.o.Metrics.Purged("other", r.Rows-r.Recipients)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.o.Log.Info("deleted integration removed", zap.String("integrationId", integrationID), zap.Int64("recipients", r.Recipients),
		zap.Int64("rows", r.Rows), zap.Strings("analyzed", r.Analyzed), zap.Duration("took", time.Since(start)))
	return nil
}
