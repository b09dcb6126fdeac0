// Package syncer brings one integration's Qualtrics surveys, distributions and
// recipients into PostgreSQL and schedules the syncs of all integrations on
// River.
//
// A run is a plan of short units kept in the database (sync_units): the
// survey listing, one unit per active survey (its details, then its
// distribution listing) and one per distribution whose history and links are
// read. River jobs work a run in slices of SliceBudget and hand it over; a
// slice cut short anywhere loses at most the pages in flight. A full sync
// reads the survey listing, the details and distributions of active surveys,
// and the history and links of every live distribution on an integration's
// first full sync, then only of those that moved plus a rotating slice due
// for verification (verifyEvery); it marks deleted what complete listings no
// longer hold. An incremental sync reads the survey listing and the
// distributions of active surveys, and history and links only for the
// distributions that are new, moved or were never read completely. Every
// brand's calls draw from one budget in PostgreSQL (BrandLimits), shared by
// every replica and integration of the brand. No transaction is open across
// a call to Qualtrics.
package syncer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// Notifier turns a page's changes into notifications, in the transaction that
// writes the page, so a change is notified exactly when it is stored. It is
// not called during an integration's first successful full sync.
type Notifier interface {
	OnChanges(ctx context.Context, tx pgx.Tx, in store.Integration, changes []store.Change, now time.Time) (raised int, err error)
}

// Metrics receives what the sync measures; nil disables it.
type Metrics interface {
	// ObserveQualtricsCall is called once per HTTP attempt. outcome is one of
	// "ok", "rate_limited", "client_error", "server_error", "network_error".
	ObserveQualtricsCall(endpoint, outcome string, retry bool)
	// SyncFinished is called once per run; result is "succeeded" or "failed".
	SyncFinished(kind microapps.SyncKind, result microapps.RunStatus, d time.Duration, integrationID string, at time.Time)
}

// VetoMetrics is implemented by a Metrics that also counts vetoed runs (the
// replica's does).
type VetoMetrics interface {
	SyncVetoed(kind microapps.SyncKind, integrationID string)
}

// Store is what the syncer needs of *store.Store.
type Store interface {
	WithTx(ctx context.Context, fn func(pgx.Tx) error) error
	GetIntegration(ctx context.Context, id string) (store.Integration, error)
	FinishSyncRunTx(ctx context.Context, tx pgx.Tx, run store.SyncRun) error
	SetSyncRunKind(ctx context.Context, integrationID string, runID int64, kind microapps.SyncKind) error
	QueueSyncRunTx(ctx context.Context, tx pgx.Tx, integrationID string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (store.SyncRun, bool, error)
	SetSyncRunJobTx(ctx context.Context, tx pgx.Tx, runID, jobID int64) error
	InsertRequestLogs(ctx context.Context, integrationID string, logs []store.RequestLog) error
	DueIntegrations(ctx context.Context, now time.Time) ([]store.Integration, error)
	FailOrphanSyncRuns(ctx context.Context, now time.Time, grace time.Duration) (int64, error)

	BeginSyncRunJob(ctx context.Context, integrationID string, id int64, now time.Time, baseURL string) (store.SyncRun, error)
	SaveSyncRunProgress(ctx context.Context, run store.SyncRun) error
	RefreshSyncRunUnitCounts(ctx context.Context, runID int64) (store.SyncProgress, error)
	PendingSyncUnits(ctx context.Context, runID int64, kind string, limit int, skip []string) ([]store.SyncUnit, error)
	DeleteSyncUnits(ctx context.Context, runID int64) error
	DropFinishedSyncPlans(ctx context.Context) (int64, error)
	RecipientsToRead(ctx context.Context, integrationID string, live, moved []string, verify bool, verifyEvery, slack time.Duration, now time.Time) ([]string, error)
	EnsureRateBuckets(ctx context.Context, brandKey string, buckets []store.RateBucket) error
	TakeRateTokens(ctx context.Context, brandKey string, buckets []store.RateBucket, want int) (int, time.Duration, error)
	ThrottleRateBuckets(ctx context.Context, brandKey string, buckets []store.RateBucket, th store.RateThrottle) error
	AnalyzeIfChanged(ctx context.Context, tables ...string) ([]string, time.Duration, error)
	HoldSyncRun(ctx context.Context, runID int64) (func(), error)
	DecideRemovals(ctx context.Context, integrationID string, runID int64, full bool, rule microapps.VetoRule, now time.Time) (store.Removals, bool, error)
	FailedRunsInARow(ctx context.Context, integrationID string) (int, error)
	HistoryUnavailableSample(ctx context.Context, integrationID string) (string, error)
	HistoryAvailableAgain(ctx context.Context, integrationID string) (int64, error)
	NoteSyncUnitStall(ctx context.Context, u store.SyncUnit) (int, error)
	SyncUnitUnmoved(ctx context.Context, u store.SyncUnit) (bool, error)
	FailedSyncUnits(ctx context.Context, runID int64) ([]store.SyncUnit, []string, error)
}

// Keyring opens sealed secrets; *seal.Keyring satisfies it.
type Keyring interface {
	Open(keyID string, sealed, associatedData []byte) ([]byte, error)
}

// Options configure New.
type Options struct {
	Store   Store
	Keyring Keyring
	// Jobs inserts and cancels the sync jobs (nil: runs can only be worked
	// directly, with RunNow).
	Jobs *river.Client[pgx.Tx]
	// AllowedHosts are extra Qualtrics hosts besides *.qualtrics.com (the
	// simulator in tests and the demo).
	AllowedHosts []string
	Notifier     Notifier // may be nil
	Metrics      Metrics  // may be nil
	Log          *zap.Logger
	Now          func() time.Time
	// ClientConfig adjusts each run's client configuration (tests: fast backoff).
	ClientConfig func(*qualtrics.Config)
	// JobTimeout bounds one sync job (one slice of a run); default 60 s. It
	// must stay below River's RescueStuckJobsAfter, so that a job is only
	// rescued when its replica is gone.
	JobTimeout time.Duration
	// SliceBudget is how long one job starts new work on a run before it
	// hands the run over to the next job (the work it started finishes
	// first); default 30 s.
	SliceBudget time.Duration
	// FailureBudget is the share of a run's units that may fail (each a
	// warning, retried by the next run) before the run fails; default 0.1.
	FailureBudget float64
	// BrandLimits is the Qualtrics budget of each brand, shared through
	// PostgreSQL by every replica and integration of the brand; the zero
	// value means DefaultBrandLimits.
	BrandLimits BrandLimits
	// MaxChanges caps the changes stored on a run; default 1000.
	MaxChanges int
	// AfterSync runs after a successful walk, before the run is recorded: the
	// notification window check and event subscription upkeep. Its count is
	// added to the run's notifications; an error becomes a warning on the run.
	// firstSync is true during the integration's first successful full sync.
	AfterSync func(ctx context.Context, in store.Integration, client *qualtrics.Client, firstSync bool) (raised int, err error)
	// Concurrency is how many units of a run (surveys, distributions) are
	// worked at once, each with its own transactions; default 12 (a unit
	// mostly waits on Qualtrics, whose brand budget paces them anyway). The
	// Notifier must then be safe for concurrent use.
	Concurrency int
}

// Syncer syncs integrations. It is safe for concurrent use.
type Syncer struct {
	store         Store
	keyring       Keyring
	allowed       []string
	notifier      Notifier
	metrics       Metrics
	afterSync     func(ctx context.Context, in store.Integration, client *qualtrics.Client, firstSync bool) (int, error)
	log           *zap.Logger
	now           func() time.Time
	clientConfig  func(*qualtrics.Config)
	jobTimeout    time.Duration
	maxChanges    int
	concurrency   int
	sliceBudget   time.Duration
	failureBudget float64
	brandLimits   BrandLimits
	river         *river.Client[pgx.Tx]

	bucketsMu sync.Mutex
	buckets   map[string]bool // brand keys whose rate buckets exist
	queues    map[string]*tokenQueue
}

// New builds a Syncer.
func New(o Options) (*Syncer, error) {
	if o.Store == nil || o.Keyring == nil {
		return nil, errors.New("syncer: a store and a keyring are required")
	}
	s := &Syncer{store: o.Store, keyring: o.Keyring, river: o.Jobs, allowed: append([]string(nil), o.AllowedHosts...),
		notifier: o.Notifier, metrics: o.Metrics, afterSync: o.AfterSync, log: o.Log, now: o.Now, clientConfig: o.ClientConfig,
		jobTimeout: o.JobTimeout, maxChanges: o.MaxChanges, concurrency: o.Concurrency,
		sliceBudget: o.SliceBudget, failureBudget: o.FailureBudget, brandLimits: o.BrandLimits.withDefaults(),
		buckets: map[string]bool{}}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.jobTimeout <= 0 {
		s.jobTimeout = time.Minute
	}
	if s.sliceBudget <= 0 {
		s.sliceBudget = 30 * time.Second
	}
	if s.failureBudget <= 0 {
		s.failureBudget = 0.1
	}
	if s.concurrency <= 0 {
		s.concurrency = 12
	}
	if s.maxChanges <= 0 {
		s.maxChanges = 1000
	}
	return s, nil
}
