package notify

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// CheckArgs is the time-based check: survey_expiring and survey_statistics.
// The periodic job (leader only, every CheckInterval) checks every
// integration; a sync may enqueue one for its own integration.
type CheckArgs struct {
	IntegrationID string `json:"integrationId,omitempty"`
}

// Kind implements river.JobArgs.
func (CheckArgs) Kind() string { return "notify_check" }

// InsertOpts keeps retries short: the next period checks again anyway.
func (CheckArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

// DeliverArgs sends one delivery (one notification over one channel).
type DeliverArgs struct {
	DeliveryID int64 `json:"deliveryId"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "deliver" }

// DeliverMaxAttempts bounds retries; with River's attempt⁴-second backoff the
// last attempt comes about four and a half hours after the first.
const DeliverMaxAttempts = 10

// InsertOpts implements river.JobArgsWithInsertOpts.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: DeliverMaxAttempts}
}

// Register adds the notifier's workers (notify_check and deliver).
func (n *Notifier) Register(workers *river.Workers) {
	river.AddWorker(workers, &checkWorker{n: n})
	river.AddWorker(workers, &deliverWorker{n: n})
}

// PeriodicJobs returns the leader-only time-based check, every CheckInterval
// and once at start. The unique period keeps one per interval even when
// several leaders overlap during an election.
func (n *Notifier) PeriodicJobs() []*river.PeriodicJob {
	every := n.o.CheckInterval
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
			return CheckArgs{}, &river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: every}}
		}, &river.PeriodicJobOpts{ID: "notify_check", RunOnStart: true}),
	}
}

type checkWorker struct {
	river.WorkerDefaults[CheckArgs]
	n *Notifier
}

func (w *checkWorker) Timeout(*river.Job[CheckArgs]) time.Duration { return 5 * time.Minute }

func (w *checkWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	_, err := w.n.CheckWindows(ctx, job.Args.IntegrationID, time.Now())
	return err
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	n *Notifier
}

func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return time.Minute }

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	final := job.Attempt >= job.MaxAttempts
	return w.n.Deliver(ctx, job.Args.DeliveryID, final, time.Now())
}
