package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// SyncArgs is the River job that works one sync run. (The run kind is
// SyncKind: a field named Kind would clash with the JobArgs method.)
type SyncArgs struct {
	IntegrationID string             `json:"integrationId"`
	RunID         int64              `json:"runId"`
	SyncKind      microapps.SyncKind `json:"kind"`
}

// Kind implements river.JobArgs.
func (SyncArgs) Kind() string { return "sync" }

// ScheduleArgs is the periodic job that triggers the due syncs.
type ScheduleArgs struct{}

// Kind implements river.JobArgs.
func (ScheduleArgs) Kind() string { return "sync_schedule" }

// ScheduleEvery is how often the leader looks for due integrations.
const ScheduleEvery = 30 * time.Second

// Queue is the River queue of sync jobs, sized by MICROAPPS_WORKERS, so that
// notification checks, deliveries, event application and purges (on other
// queues) never wait behind a sync backlog.
const Queue = "sync"

// ScheduleQueue is the queue of the scheduler alone (one worker is enough):
// on the default queue it waited behind bursts of deliveries, slow webhooks
// and purges, and every integration's syncs with it.
const ScheduleQueue = "sync_schedule"

// orphanGrace is how old a queued or running run whose job is gone must be
// before the scheduler fails it: longer than a job's timeout plus River's
// rescue of jobs whose replica died.
const orphanGrace = 10 * time.Minute

// Register adds the sync and schedule workers.
func (s *Syncer) Register(workers *river.Workers) {
	river.AddWorker(workers, &syncWorker{s: s})
	river.AddWorker(workers, &scheduleWorker{s: s})
}

// PeriodicJobs is the scheduler's job; River runs periodic jobs on the
// elected leader only, so one replica schedules for all.
func (s *Syncer) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(ScheduleEvery), scheduleJob, &river.PeriodicJobOpts{ID: "sync_schedule", RunOnStart: true}),
	}
}

func scheduleJob() (river.JobArgs, *river.InsertOpts) {
	return ScheduleArgs{}, &river.InsertOpts{Queue: ScheduleQueue, UniqueOpts: river.UniqueOpts{ByPeriod: ScheduleEvery}}
}

// Trigger queues a sync of an integration unless one is already queued or
// running, which it returns instead with created = false. The run and its
// River job are inserted in one transaction: the partial unique index on
// sync_runs makes two replicas (or two admins) that trigger at once end up
// with one run and one job.
func (s *Syncer) Trigger(ctx context.Context, integrationID string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (store.SyncRun, bool, error) {
	if s.river == nil {
		return store.SyncRun{}, false, errors.New("syncer: trigger: no job client (Options.Jobs)")
	}
	if !kind.Valid() {
		return store.SyncRun{}, false, fmt.Errorf("syncer: trigger: unknown kind %q", kind)
	}
	var (
		run     store.SyncRun
		created bool
	)
	err := s.store.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		run, created, err = s.store.QueueSyncRunTx(ctx, tx, integrationID, kind, trigger)
		if err != nil || !created {
			return err
		}
		// Unique by args (the run id among them): the same run is never
		// worked by two jobs. Uniqueness per integration is the partial
		// index's job; River's would also count a job that is completing
		// after its run finished, and skip the insert of the next run's job.
		res, err := s.river.InsertTx(ctx, tx, SyncArgs{IntegrationID: integrationID, RunID: run.ID, SyncKind: kind},
			&river.InsertOpts{Queue: Queue, UniqueOpts: river.UniqueOpts{ByArgs: true}})
		if err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		jobID := res.Job.ID
		run.RiverJobID = &jobID
		return s.store.SetSyncRunJobTx(ctx, tx, run.ID, jobID)
	})
	if err != nil {
		return store.SyncRun{}, false, fmt.Errorf("syncer: trigger: %w", err)
	}
	return run, created, nil
}

// CancelJobs cancels River jobs, e.g. those of a deleted integration's runs.
// A running sync sees its context cancelled and stops at a page boundary.
func (s *Syncer) CancelJobs(ctx context.Context, jobIDs []int64) error {
	if s.river == nil {
		return errors.New("syncer: cancel jobs: no job client (Options.Jobs)")
	}
	var errs []error
	for _, id := range jobIDs {
		if _, err := s.river.JobCancel(ctx, id); err != nil && !errors.Is(err, river.ErrNotFound) {
			errs = append(errs, fmt.Errorf("job %d: %w", id, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("syncer: cancel jobs: %w", errors.Join(errs...))
	}
	return nil
}

// ScheduleDue triggers a sync for every integration that is due at now and
// returns how many runs it queued.
func (s *Syncer) ScheduleDue(ctx context.Context) (int, error) {
	now := s.now()
	if n, err := s.store.FailOrphanSyncRuns(ctx, now, orphanGrace); err != nil {
		return 0, fmt.Errorf("syncer: schedule: %w", err)
	} else if n > 0 {
		s.log.Warn("failed sync runs whose job had ended", zap.Int64("runs", n))
		if rows, err := s.store.DropFinishedSyncPlans(ctx); err != nil {
			s.log.Warn("plans of failed sync runs not dropped", zap.Error(err))
		} else {
			s.log.Info("dropped the plans of failed sync runs", zap.Int64("rows", rows))
		}
	}
	due, err := s.store.DueIntegrations(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("syncer: schedule: %w", err)
	}
	queued := 0
	var errs []error
	for _, in := range due {
		kind, ok := DueKind(in, now)
		if !ok {
			continue
		}
		if _, created, err := s.Trigger(ctx, in.ID, kind, microapps.TriggerSchedule); err != nil {
			errs = append(errs, err)
		} else if created {
			queued++
		}
	}
	return queued, errors.Join(errs...)
}

type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *Syncer
}

func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return w.s.jobTimeout }

// NextRetry bounds the wait after a slice that failed on the database: the
// default policy waits attempts⁴ seconds, and a long run's attempts grow
// with every error of its life (the 25th would wait four days). A run whose
// job is discarded after its attempts is failed by the scheduler, and the
// next one starts afresh.
func (w *syncWorker) NextRetry(job *river.Job[SyncArgs]) time.Time {
	return time.Now().Add(min(time.Duration(job.Attempt)*time.Duration(job.Attempt)*time.Second, time.Minute))
}

// Work runs one slice of the sync run (Options.SliceBudget) and, while the
// run has work left, snoozes the job so that the next slice runs at once on
// whichever replica fetches it: the run's units record what is done, so a
// slice continues where the last one stopped. A sync that fails is recorded
// as a failed run and the job completes: the scheduler decides when to try
// again. A slice that could not reach the database, or was stopped
// (shutdown, timeout), is retried and continues the same run. A replica
// killed mid-slice leaves its job running until River's rescuer hands it to
// another replica (RescueStuckJobsAfter, under two minutes).
func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	_, done, err := w.s.WorkSlice(ctx, job.Args.IntegrationID, job.Args.RunID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // the integration was deleted or the run finished already
	case errors.Is(err, store.ErrRunBusy):
		// Another job holds the run (this one was rescued while the first
		// still works): try again once it has handed over.
		return river.JobSnooze(5 * time.Second)
	case err != nil && ctx.Err() != nil:
		return river.JobSnooze(time.Second)
	case err != nil:
		return err
	case !done:
		return river.JobSnooze(0)
	}
	return nil
}

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	s *Syncer
}

func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	_, err := w.s.ScheduleDue(ctx)
	return err
}
