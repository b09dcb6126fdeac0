package events

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

// ApplyArgs is the River job that applies one received event.
type ApplyArgs struct {
	EventID int64 `json:"eventId"`
}

// Kind is the River job kind.
func (ApplyArgs) Kind() string { return "qualtrics_event" }

// InsertOpts: applies run on their own queue, and applying is idempotent, so
// a few retries of a failed apply are safe; an event still pending afterwards
// is ReapplyPending's.
func (ApplyArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue, MaxAttempts: 5} }

// Queue is the River queue of apply jobs. It is separate from the default
// queue because applies are short and latency-bound while syncs run for
// minutes: on a shared queue, a few running syncs would hold every worker and
// events would wait for them. A replica that works jobs must configure it,
// e.g. Queues[events.Queue] = events.QueueConfig().
const Queue = "qualtrics_events"

// QueueConfig is the configuration Queue needs: enough workers for bursts of
// short jobs, and a fetch cooldown short enough that fetching is not the
// bottleneck (River fetches at most once per cooldown, so throughput is at
// most MaxWorkers per cooldown).
func QueueConfig() river.QueueConfig {
	return river.QueueConfig{MaxWorkers: 16, FetchCooldown: 10 * time.Millisecond}
}

// Worker applies events on River.
type Worker struct {
	river.WorkerDefaults[ApplyArgs]
	s *Service
}

// Work applies the job's event. An event waiting for its survey or recipient
// completes the job: it is retried by ReapplyPending after the next sync.
func (w *Worker) Work(ctx context.Context, job *river.Job[ApplyArgs]) error {
	_, err := w.s.Apply(ctx, job.Args.EventID)
	return err
}

// Timeout bounds one apply: a few row updates.
func (w *Worker) Timeout(*river.Job[ApplyArgs]) time.Duration { return 30 * time.Second }

// Register adds the apply and subscription workers to a River worker bundle.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &Worker{s: s})
	river.AddWorker(workers, &subscriptionWorker{s: s})
}

// Apply applies one stored event now and says what became of it.
func (s *Service) Apply(ctx context.Context, eventID int64) (store.EventOutcome, error) {
	out, err := s.store.ApplyEvent(ctx, eventID, s.now(), effect)
	if err != nil {
		return 0, fmt.Errorf("events: apply %d: %w", eventID, err)
	}
	if out == store.EventPending {
		s.log.Debug("event pending: survey or recipient not synced yet", zap.Int64("eventId", eventID))
	}
	return out, nil
}

// ReapplyPending applies the integration's pending events again (the sync
// that just ran may have brought their survey or recipient), oldest first,
// after dropping pending events older than 24 h and applied ones past their
// replay window. The sync worker calls it after each sync.
func (s *Service) ReapplyPending(ctx context.Context, integrationID string, now time.Time) (applied int, err error) {
	dropped, err := s.store.DropStaleEvents(ctx, integrationID, now.Add(-s.pendingTTL), now.Add(-s.appliedTTL))
	if err != nil {
		return 0, fmt.Errorf("events: reapply: %w", err)
	}
	if dropped > 0 {
		s.log.Info("dropped events that never matched a survey or recipient",
			zap.String("integrationId", integrationID), zap.Int64("dropped", dropped))
	}
	const batch = 500
	var after int64
	for {
		ids, err := s.store.PendingEventIDs(ctx, integrationID, after, batch)
		if err != nil {
			return applied, fmt.Errorf("events: reapply: %w", err)
		}
		for _, id := range ids {
			out, err := s.store.ApplyEvent(ctx, id, now, effect)
			if err != nil {
				return applied, fmt.Errorf("events: reapply %d: %w", id, err)
			}
			if out == store.EventApplied {
				applied++
			}
		}
		if len(ids) < batch {
			return applied, nil
		}
		after = ids[len(ids)-1]
	}
}
