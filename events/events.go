// Package events is the push side of the Qualtrics integration: it registers
// event subscriptions for the integrations that opt in, receives the signed
// callbacks at POST /hooks/qualtrics/{integrationId}, and applies them to the
// stored recipients, distributions and surveys in a River job, so a finished
// survey leaves a user's list within seconds instead of at the next sync.
//
// Events are an accelerator, not the source of truth: the receiver answers
// fast and stores the event with a River job in one transaction; the worker
// moves a recipient forward only (a finished response stays finished) and
// adjusts the distribution's counters by the transition; the next incremental
// sync overwrites whatever an event got wrong. Events whose survey or
// recipient is not synced yet stay pending, are re-applied after each sync by
// ReapplyPending and dropped after 24 h.
//
// Wiring, in the command that composes the app:
//   - every replica: built with Options.Jobs, then svc.Register(workers)
//     (River refuses to insert a job kind its client has no worker for);
//   - replicas that work jobs: Queues[events.Queue] = events.QueueConfig(),
//     and a pool big enough for those workers besides the sync's;
//   - the router: svc.Receiver() at the root, e.g. r.Handle("/hooks/qualtrics/*", …),
//     without stripping the path;
//   - after each successful sync: SyncSubscriptions (it removes them all when
//     events are disabled) and ReapplyPending; before deleting an
//     integration: RemoveAll, while its token is still at hand;
//   - after an integration is stored with events turned on or off:
//     QueueSubscriptions (Options.PublicURL and Options.Client set), so the
//     subscriptions follow at once instead of at the next sync.
package events

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/microapps/microapps/internal/budget"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Store is what the package needs of *store.Store.
type Store interface {
	WithTx(ctx context.Context, fn func(pgx.Tx) error) error
	GetEventsKey(ctx context.Context, integrationID string) (store.EventsKey, error)
	EventsReceivingIntegrationIDs(ctx context.Context) ([]string, error)
	SetEventsKeyIfMissing(ctx context.Context, integrationID, keyID string, sealed []byte) (store.EventsKey, error)
	InsertEventTx(ctx context.Context, tx pgx.Tx, ev store.QualtricsEvent) (id int64, inserted bool, err error)
	ApplyEvent(ctx context.Context, id int64, now time.Time, effect func(store.QualtricsEvent) store.EventEffect) (store.EventOutcome, error)
	PendingEventIDs(ctx context.Context, integrationID string, afterID int64, limit int) ([]int64, error)
	DropStaleEvents(ctx context.Context, integrationID string, pendingBefore, appliedBefore time.Time) (int64, error)
	ListEventSubscriptions(ctx context.Context, integrationID string) ([]store.EventSubscription, error)
	PutEventSubscription(ctx context.Context, e store.EventSubscription) error
	DeleteEventSubscription(ctx context.Context, integrationID, surveyID string) error
	ActiveSurveyIDs(ctx context.Context, integrationID string) ([]string, error)
	GetIntegration(ctx context.Context, id string) (store.Integration, error)
}

// Keyring seals and opens the per-integration shared keys; *seal.Keyring
// satisfies it.
type Keyring interface {
	Seal(plaintext, associatedData []byte) (keyID string, sealed []byte, err error)
	Open(keyID string, sealed, associatedData []byte) ([]byte, error)
}

// Options configure New.
type Options struct {
	Store   Store
	Keyring Keyring
	Log     *zap.Logger
	Now     func() time.Time
	// Jobs inserts the apply and subscription jobs (nil: received events are
	// stored and wait for ReapplyPending).
	Jobs *river.Client[pgx.Tx]

	// MaxBody bounds a callback's body; default 64 KiB. Larger bodies get 413.
	MaxBody int64
	// RatePerSecond and Burst limit callbacks per integration (per replica);
	// defaults 50/s and 200. Over the limit the answer is 429.
	RatePerSecond float64
	Burst         int
	// StrangerRatePerSecond and StrangerBurst limit, all together, the
	// callbacks for ids that are not an integration receiving events (per
	// replica); defaults 20/s and 100. Over it the answer is 429, with no
	// log line and no query, so a flood of made-up ids costs neither logs
	// nor database, and does not touch the real integrations' budgets.
	StrangerRatePerSecond float64
	StrangerBurst         int
	// FailureRatePerSecond and FailureBurst limit the callbacks to one
	// integration from one source address (an IPv6 /64) that fail: a bad
	// signature, an unreadable body. Defaults 1/s and 20; over it the answer
	// is 429. The signature is checked before the integration's own budget
	// (RatePerSecond) is spent, so a flood of forged callbacks never makes
	// Qualtrics' signed ones wait.
	FailureRatePerSecond float64
	FailureBurst         int
	// KeyCacheTTL is how long a replica keeps an integration's opened shared
	// key, saving a query per callback; default 5 s, negative disables. Only
	// usable keys are cached, so disabling events takes effect within it.
	KeyCacheTTL time.Duration
	// PendingTTL is how long an event waits for its survey or recipient;
	// default 24 h.
	PendingTTL time.Duration
	// AppliedTTL is how long an applied event is kept to recognise replays;
	// default 7 days.
	AppliedTTL time.Duration

	// PublicURL and Client let the subscription job (QueueSubscriptions) work:
	// where Qualtrics posts events, and an integration's own Qualtrics client.
	PublicURL *url.URL
	Client    func(store.Integration) (*qualtrics.Client, error)
}

// Service receives, applies and subscribes. It is safe for concurrent use.
type Service struct {
	store      Store
	keyring    Keyring
	log        *zap.Logger
	now        func() time.Time
	maxBody    int64
	rps        rate.Limit
	burst      int
	keyTTL     time.Duration
	pendingTTL time.Duration
	appliedTTL time.Duration
	publicURL  *url.URL
	clientFor  func(store.Integration) (*qualtrics.Client, error)

	river *river.Client[pgx.Tx]

	// limiters are the integrations' budgets; failures are the budgets of
	// failed callbacks by integration and source address.
	limiters *budget.Set
	failures *budget.Set

	// strangers is the shared budget of callbacks for unknown ids; rejectLog
	// bounds the warnings about rejected callbacks.
	strangers *rate.Limiter
	rejectLog *rate.Limiter
	// known caches the ids of integrations receiving events, refreshed at
	// most once a second on a miss: an unknown id never costs a query of its
	// own.
	knownMu sync.Mutex
	known   map[string]bool
	knownAt time.Time

	keyMu sync.Mutex
	keys  map[string]cachedKey
}

type cachedKey struct {
	key     []byte
	brandID string
	until   time.Time
}

// New builds a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Keyring == nil {
		return nil, errors.New("events: a store and a keyring are required")
	}
	s := &Service{store: o.Store, keyring: o.Keyring, river: o.Jobs, log: o.Log, now: o.Now, maxBody: o.MaxBody,
		rps: rate.Limit(o.RatePerSecond), burst: o.Burst, keyTTL: o.KeyCacheTTL,
		pendingTTL: o.PendingTTL, appliedTTL: o.AppliedTTL, publicURL: o.PublicURL, clientFor: o.Client,
		keys: map[string]cachedKey{}}
	failRate, failBurst := rate.Limit(o.FailureRatePerSecond), o.FailureBurst
	if failRate <= 0 {
		failRate = 1
	}
	if failBurst <= 0 {
		failBurst = 20
	}
	s.failures = budget.New(failRate, failBurst)
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = 64 << 10
	}
	if s.rps <= 0 {
		s.rps = 50
	}
	if s.burst <= 0 {
		s.burst = 200
	}
	s.limiters = budget.New(s.rps, s.burst)
	strangerRate, strangerBurst := rate.Limit(o.StrangerRatePerSecond), o.StrangerBurst
	if strangerRate <= 0 {
		strangerRate = 20
	}
	if strangerBurst <= 0 {
		strangerBurst = 100
	}
	s.strangers = rate.NewLimiter(strangerRate, strangerBurst)
	s.rejectLog = rate.NewLimiter(1, 10)
	if s.keyTTL == 0 {
		s.keyTTL = 5 * time.Second
	}
	if s.pendingTTL <= 0 {
		s.pendingTTL = 24 * time.Hour
	}
	if s.appliedTTL <= 0 {
		s.appliedTTL = 7 * 24 * time.Hour
	}
	return s, nil
}

// limiter returns the integration's rate limiter.
func (s *Service) limiter(integrationID string) *rate.Limiter { return s.limiters.Of(integrationID) }

// failureLimiter returns the budget of failed callbacks to integrationID
// from the source address of remoteAddr.
func (s *Service) failureLimiter(integrationID, remoteAddr string) *rate.Limiter {
	return s.failures.Of(integrationID + " " + budget.Source(remoteAddr))
}

type verdict int

const (
	receivingYes     verdict = iota + 1 // an integration receiving events
	receivingNo                         // not one (or not yet)
	receivingLimited                    // a stranger over the strangers' budget
)

// receiving says whether integrationID is an integration that accepts event
// callbacks. Known ids are answered from a cached set; any other id spends
// one token of the strangers' budget first, and then costs at most one
// query: a refresh of the whole set when it is a second old, else a look-up
// of that id (an integration whose events were enabled since).
func (s *Service) receiving(ctx context.Context, integrationID string) (verdict, error) {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	if s.known[integrationID] {
		return receivingYes, nil
	}
	if !s.strangers.Allow() {
		return receivingLimited, nil
	}
	if s.known == nil || s.keyTTL < 0 || time.Since(s.knownAt) >= time.Second {
		ids, err := s.store.EventsReceivingIntegrationIDs(ctx)
		if err != nil {
			return 0, err
		}
		s.known = make(map[string]bool, len(ids))
		for _, id := range ids {
			s.known[id] = true
		}
		s.knownAt = time.Now()
	} else {
		k, err := s.store.GetEventsKey(ctx, integrationID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		if err == nil && k.Enabled && len(k.Sealed) > 0 {
			s.known[integrationID] = true
		}
	}
	if s.known[integrationID] {
		return receivingYes, nil
	}
	return receivingNo, nil
}

var errNoKey = errors.New("events: integration unknown, events disabled or no key")

// receiverKey returns the opened shared key of an integration that accepts
// events, and its brand id.
func (s *Service) receiverKey(ctx context.Context, integrationID string) ([]byte, string, error) {
	now := time.Now()
	if s.keyTTL > 0 {
		s.keyMu.Lock()
		c, ok := s.keys[integrationID]
		s.keyMu.Unlock()
		if ok && now.Before(c.until) {
			return c.key, c.brandID, nil
		}
	}
	k, err := s.store.GetEventsKey(ctx, integrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", errNoKey
	}
	if err != nil {
		return nil, "", err
	}
	if !k.Enabled || len(k.Sealed) == 0 {
		return nil, "", errNoKey
	}
	key, _, err := seal.OpenSecret(s.keyring, seal.EventsKey, integrationID, k.KeyID, k.Sealed)
	if err != nil {
		return nil, "", err
	}
	if s.keyTTL > 0 {
		s.keyMu.Lock()
		if len(s.keys) >= 10000 {
			clear(s.keys)
		}
		s.keys[integrationID] = cachedKey{key: key, brandID: k.BrandID, until: now.Add(s.keyTTL)}
		s.keyMu.Unlock()
	}
	return key, k.BrandID, nil
}

// forgetKey drops a cached key, e.g. when events were disabled here.
func (s *Service) forgetKey(integrationID string) {
	s.keyMu.Lock()
	delete(s.keys, integrationID)
	s.keyMu.Unlock()
}
