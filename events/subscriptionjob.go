package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// SubscriptionArgs is the River job that brings an integration's event
// subscriptions in step with its events setting at once: registered when
// events are turned on (or the integration is created with them on), removed
// when they are turned off, rather than at the end of its next sync, up to an
// hour later. The sync keeps them in step afterwards (new active surveys).
// Enabled is the setting that queued the job; the job works with the setting
// stored when it runs.
type SubscriptionArgs struct {
	IntegrationID string `json:"integrationId"`
	Enabled       bool   `json:"enabled"`
}

// Kind is the River job kind.
func (SubscriptionArgs) Kind() string { return "qualtrics_event_subscriptions" }

// InsertOpts: the job runs on the events queue, whose workers are not held by
// syncs. Every change queues its own job (River's unique jobs would refuse one
// while a job that already read the old setting is finishing); the jobs of one
// integration take turns (see Work), and each reads the setting stored when
// its turn comes, so the last change is the one that holds.
func (SubscriptionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 5}
}

// QueueSubscriptions queues the subscription job of an integration whose
// events setting changed. Call it after the change is stored.
func (s *Service) QueueSubscriptions(ctx context.Context, integrationID string, enabled bool) error {
	rc := s.river
	if rc == nil {
		return errors.New("events: queue subscriptions: no job client (Options.Jobs)")
	}
	if _, err := rc.Insert(ctx, SubscriptionArgs{IntegrationID: integrationID, Enabled: enabled}, nil); err != nil {
		return fmt.Errorf("events: queue subscriptions: %w", err)
	}
	return nil
}

// subscriptionRechecks bounds how often one job follows a setting that changed
// while it worked.
const subscriptionRechecks = 3

type subscriptionWorker struct {
	river.WorkerDefaults[SubscriptionArgs]
	s *Service
}

// Timeout: a brand with hundreds of active surveys needs as many creates.
func (w *subscriptionWorker) Timeout(*river.Job[SubscriptionArgs]) time.Duration {
	return 10 * time.Minute
}

// Work does what the end of a sync does with subscriptions (SyncSubscriptions,
// which removes them all when events are off), with the integration as it is
// stored now. One job per integration works at a time: it holds a
// transaction-level advisory lock while it works, and a job that finds the
// lock taken is snoozed for a second rather than wait holding a connection.
// If the setting changed while it worked, it goes again.
func (w *subscriptionWorker) Work(ctx context.Context, job *river.Job[SubscriptionArgs]) error {
	s := w.s
	if s.clientFor == nil {
		return errors.New("events: subscriptions: no Qualtrics client (Options.Client)")
	}
	id := job.Args.IntegrationID
	log := s.log.With(zap.String("integrationId", id))
	errBusy := errors.New("another job is at it")
	err := s.store.WithTx(ctx, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('qualtrics_event_subscriptions:' || $1))`, id).Scan(&locked); err != nil {
			return fmt.Errorf("events: subscriptions: lock: %w", err)
		}
		if !locked {
			return errBusy
		}
		return w.inStep(ctx, id, log)
	})
	if errors.Is(err, errBusy) {
		return river.JobSnooze(time.Second)
	}
	return err
}

func (w *subscriptionWorker) inStep(ctx context.Context, id string, log *zap.Logger) error {
	s := w.s
	for range subscriptionRechecks {
		in, err := s.store.GetIntegration(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted: its subscriptions went with it (BeforeDelete)
		}
		if err != nil {
			return fmt.Errorf("events: subscriptions: %w", err)
		}
		client, err := s.clientFor(in)
		if err != nil {
			return fmt.Errorf("events: subscriptions: %w", err)
		}
		err = s.SyncSubscriptions(ctx, in, client, s.publicURL)
		if qualtrics.IsUnauthorized(err) {
			// Retrying will not help; the sync reports the credential.
			log.Warn("event subscriptions not changed: Qualtrics refused the credential", zap.Error(err))
			return nil
		}
		if err != nil {
			return err
		}
		log.Info("event subscriptions in step with the setting", zap.Bool("eventsEnabled", in.EventsEnabled))
		now, err := s.store.GetIntegration(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || now.EventsEnabled == in.EventsEnabled {
			return err
		}
	}
	return nil
}
