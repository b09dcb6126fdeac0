package replica

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"riverqueue.com/riverui"
)

// jobsPrefix is where River's own job UI is served; the web package lets
// only platform admins through.
const jobsPrefix = "/console/jobs"

// newJobsUI builds River's UI on this replica's client. It is started by
// Serve, with River.
func newJobsUI(client *river.Client[pgx.Tx], log *zap.Logger) (*riverui.Handler, error) {
	return riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		// Job arguments hold only ids, but the list stays terse by default.
		JobListHideArgsByDefault: true,
		Logger:                   slog.New(zapslog.NewHandler(log.Named("riverui").Core(), zapslog.WithName("riverui"))),
		Prefix:                   jobsPrefix,
	})
}

// startJobsUI starts the job UI's background services, when it is mounted.
func (a *Replica) startJobsUI(ctx context.Context) {
	if a.jobsUI == nil {
		return
	}
	if err := a.jobsUI.Start(ctx); err != nil {
		a.log.Warn("River's job UI did not start", zap.Error(err))
	}
}
