package replica

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

type purgeArgs struct{}

func (purgeArgs) Kind() string { return "purge" }

// purgeWorker enforces retention: request logs 24 h, expired sessions, old
// notifications.
type purgeWorker struct {
	river.WorkerDefaults[purgeArgs]
	store *store.Store
	log   *zap.Logger
}

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[purgeArgs]) error {
	r, err := w.store.Purge(ctx, time.Now())
	if err != nil {
		return err
	}
	w.log.Info("purged", zap.Int64("requestLogs", r.RequestLogs), zap.Int64("sessions", r.Sessions), zap.Int64("notifications", r.Notifications))
	return nil
}
