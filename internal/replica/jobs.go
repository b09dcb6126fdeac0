package replica

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

type purgeArgs struct{}

func (purgeArgs) Kind() string { return "purge" }

// purgeWorker enforces retention (store.Purge: request logs, sessions,
// notifications with their deliveries, sync runs, events, what syncs marked
// deleted a month ago), in batches, and queues the removal of any deleted
// integration whose data is still there (a removal job lost, or queued by an
// older version).
type purgeWorker struct {
	river.WorkerDefaults[purgeArgs]
	store   *store.Store
	log     *zap.Logger
	metrics *metrics
	river   func() *river.Client[pgx.Tx]
}

// Timeout: batches of a few thousand rows, repeated until done; the first
// purge of a large backlog may take minutes. An interrupted purge keeps what
// it deleted and the next one continues.
func (w *purgeWorker) Timeout(*river.Job[purgeArgs]) time.Duration { return 30 * time.Minute }

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[purgeArgs]) error {
	start := time.Now()
	r, err := w.store.Purge(ctx, time.Now())
	for table, n := range r.ByTable() {
		w.metrics.Purged(table, n)
	}
	if err != nil {
		return err
	}
	w.log.Info("purged", zap.Int64("rows", r.Rows()), zap.Int64("requestLogs", r.RequestLogs), zap.Int64("sessions", r.Sessions),
		zap.Int64("notifications", r.Notifications), zap.Int64("syncRuns", r.SyncRuns), zap.Int64("events", r.Events),
		zap.Int64("recipients", r.Recipients), zap.Strings("analyzed", r.Analyzed), zap.Duration("took", time.Since(start)))
	ids, err := w.store.DeletedIntegrationIDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	return enqueueRemovals(ctx, w.river(), ids)
}

// removeIntegrationArgs removes the data of an integration deleted through
// the API, in batches (store.RemoveDeletedIntegration).
type removeIntegrationArgs struct {
	IntegrationID string `json:"integrationId"`
}

func (removeIntegrationArgs) Kind() string { return "remove_integration" }

// InsertOpts: one removal per integration at a time.
func (removeIntegrationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func enqueueRemovals(ctx context.Context, c *river.Client[pgx.Tx], ids []string) error {
	if c == nil {
		return errors.New("no job client to queue the removal of deleted integrations")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: removeIntegrationArgs{IntegrationID: id}}
	}
	_, err := c.InsertMany(ctx, params)
	return err
}

type removeIntegrationWorker struct {
	river.WorkerDefaults[removeIntegrationArgs]
	store   *store.Store
	log     *zap.Logger
	metrics *metrics
}

// Timeout: a 1,000,000-recipient integration takes minutes (see README's
// scale benchmark); past this the job is retried and continues where it
// stopped.
func (w *removeIntegrationWorker) Timeout(*river.Job[removeIntegrationArgs]) time.Duration {
	return time.Hour
}

func (w *removeIntegrationWorker) Work(ctx context.Context, job *river.Job[removeIntegrationArgs]) error {
	start := time.Now()
	r, err := w.store.RemoveDeletedIntegration(ctx, job.Args.IntegrationID)
	w.metrics.Purged("recipients", r.Recipients)
	w.metrics.Purged("other", r.Rows-r.Recipients)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed already, or not deleted
	}
	if err != nil {
		return err
	}
	w.log.Info("deleted integration removed", zap.String("integrationId", job.Args.IntegrationID), zap.Int64("recipients", r.Recipients),
		zap.Int64("rows", r.Rows), zap.Strings("analyzed", r.Analyzed), zap.Duration("took", time.Since(start)))
	return nil
}
