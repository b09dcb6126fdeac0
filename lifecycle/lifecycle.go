// Package lifecycle owns what happens to an integration's data around its
// syncs: after each successful sync (waiting events applied, event
// subscriptions kept in step, the brand's web host learnt, the expiry
// windows checked), before and after a delete (subscriptions removed from
// Qualtrics while the credential is still there, then the data removed in
// batches), and retention (the periodic purge). The composition root builds
// it with everything it needs; it is tested on PostgreSQL alone.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// Events is what the lifecycle needs of the event service.
type Events interface {
	ReapplyPending(ctx context.Context, integrationID string, now time.Time) (int, error)
	SyncSubscriptions(ctx context.Context, in store.Integration, client *qualtrics.Client, publicURL *url.URL) error
	RemoveAll(ctx context.Context, in store.Integration, client *qualtrics.Client) error
}

// Windows raises the notifications whose time window opened (expiring
// invitations, Brand Admins' statistics) for one integration.
type Windows interface {
	CheckWindows(ctx context.Context, integrationID string, now time.Time) (int, error)
}

// Metrics counts what the purge and removals delete.
type Metrics interface {
	Purged(table string, n int64)
}

// Options build the service. Store and Jobs are required.
type Options struct {
	Store *store.Store
	// Jobs queues the removal of deleted integrations' data.
	Jobs    *river.Client[pgx.Tx]
	Events  Events  // nil: no event subscriptions to keep in step
	Windows Windows // nil: no notification windows to check
	// Client builds an integration's Qualtrics client (the syncer's), for
	// the subscriptions removed before a delete.
	Client    func(store.Integration) (*qualtrics.Client, error)
	PublicURL *url.URL // where Qualtrics posts events (the subscriptions' target)
	Metrics   Metrics  // nil: not counted
	Log       *zap.Logger
	Now       func() time.Time
}

// Service carries out the integration's lifecycle.
type Service struct{ o Options }

// New returns the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Jobs == nil {
		return nil, errors.New("lifecycle: a store and a job client are required")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	return &Service{o: o}, nil
}

type noMetrics struct{}

func (noMetrics) Purged(string, int64) {}

// AfterSync runs after each successful sync: events that waited for their
// survey or recipient are applied, event subscriptions follow the active
// surveys (or go when events were turned off), the brand's web host is
// learnt once, and the time-based notification rules run for that
// integration, so an expiry window that opened is announced now rather than
// at the next periodic check. The first sync raises nothing. It returns the
// notifications raised; each step runs even when another failed.
func (s *Service) AfterSync(ctx context.Context, in store.Integration, client *qualtrics.Client, firstSync bool) (int, error) {
	var errs []error
	now := s.o.Now()
	if s.o.Events != nil {
		if _, err := s.o.Events.ReapplyPending(ctx, in.ID, now); err != nil {
			errs = append(errs, err)
		}
		if in.EventsEnabled {
			if err := s.o.Events.SyncSubscriptions(ctx, in, client, s.o.PublicURL); err != nil {
				errs = append(errs, err)
			}
		} else if subs, err := s.o.Store.ListEventSubscriptions(ctx, in.ID); err == nil && len(subs) > 0 {
			if err := s.o.Events.RemoveAll(ctx, in, client); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if in.BrandBaseURL == "" {
		if err := s.fillBrandBaseURL(ctx, in, client); err != nil {
			errs = append(errs, err)
		}
	}
	raised := 0
	if !firstSync && s.o.Windows != nil {
		n, err := s.o.Windows.CheckWindows(ctx, in.ID, now)
		raised += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return raised, errors.Join(errs...)
}

// fillBrandBaseURL learns the brand's web host (a vanity host, often) from
// one of its surveys' definitions, once: deep links into Qualtrics (Review
// distributions, results) use it rather than the API host.
func (s *Service) fillBrandBaseURL(ctx context.Context, in store.Integration, client *qualtrics.Client) error {
	surveyID, err := s.o.Store.AnySurveyID(ctx, in.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // no survey yet: the next sync tries again
	}
	if err != nil {
		return err
	}
	meta, err := client.SurveyMeta(ctx, surveyID)
	if err != nil {
		return fmt.Errorf("brand base URL: %w", err)
	}
	if u, ok := links.SafeHTTP(meta.BrandBaseURL); ok {
		return s.o.Store.SetBrandBaseURL(ctx, in.ID, u)
	}
	return nil
}

// BeforeDelete removes an integration's event subscriptions from Qualtrics
// while its credential is still stored. Qualtrics is given 20 seconds: a
// subscription left behind posts to a hook that answers 404.
func (s *Service) BeforeDelete(ctx context.Context, in store.Integration) error {
	if s.o.Events == nil || s.o.Client == nil {
		return nil
	}
	subs, err := s.o.Store.ListEventSubscriptions(ctx, in.ID)
	if err != nil || len(subs) == 0 {
		return err
	}
	client, err := s.o.Client(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return s.o.Events.RemoveAll(ctx, in, client)
}

// AfterDelete queues the removal of a deleted integration's data (it is gone
// from the API, the console and the pages already). Should the queueing
// fail, the next purge queues it.
func (s *Service) AfterDelete(ctx context.Context, integrationID string) error {
	return s.queueRemovals(ctx, s.o.Jobs, []string{integrationID})
}

// queueRemovals queues one removal job per integration (one at a time per
// integration: the job is unique by its arguments).
func (s *Service) queueRemovals(ctx context.Context, jobs *river.Client[pgx.Tx], ids []string) error {
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: RemoveIntegrationArgs{IntegrationID: id}}
	}
	_, err := jobs.InsertMany(ctx, params)
	return err
}
