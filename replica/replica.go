// Package replica wires one replica of the service: its database pool, the
// notifier, syncer and event service with the River client that runs their
// jobs, and the HTTP routes (admin API, pages, /api/v1/me, event callbacks,
// /metrics, /livez, /readyz) behind the request-id, access-log and recovery
// middleware. `microapps serve` and `microapps demo` run it, and so do the
// tests of cmd/microapps and reliability/, so what they test is what ships.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"riverqueue.com/riverui"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/lifecycle"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/web"
	"github.com/microapps/microapps/web/console"
)

// Options is what a replica is built from. The command fills it from its
// MICROAPPS_* configuration; the fields after DevUsers exist for tests only.
type Options struct {
	// DatabaseURL is the PostgreSQL database the replica opens its pool on.
	// It is not read when Store is set.
	DatabaseURL string
	// ReadDatabaseURL, when set, is a streaming standby of DatabaseURL
	// (MICROAPPS_DATABASE_READ_URL): the pages and /api/v1/me read from it
	// while it is up, close behind the primary and has replayed the user's
	// own writes (store.ReadRouter); everything else uses the primary.
	ReadDatabaseURL string
	// ReadMaxLag replaces the router's bound on the replica's lag (zero:
	// 5 s); not read from the environment.
	ReadMaxLag time.Duration
	// Store, when not nil, is used instead of opening DatabaseURL, and Close
	// leaves it open: tests that share one database between two replicas, or
	// kill its sessions, keep their own handle on it.
	Store *store.Store

	HTTPAddr string // where Serve listens, e.g. ":8080"
	// MetricsAddr, when set, is a separate listener for /metrics, which is
	// then not on HTTPAddr: integration ids, queue depths and routes are
	// for the scraper, not for whoever reaches the public port.
	MetricsAddr           string
	PublicURL             *url.URL // how users and Qualtrics reach this service
	AdminTokens           []string
	Keyring               *seal.Keyring
	AuthMode              string // "oidc", "header" or "dev"
	AuthHeader            string
	TrustedProxies        []netip.Prefix
	OIDCIssuer            string
	OIDCClientID          string
	OIDCClientSecret      string
	OIDCScopes            []string // empty: web.DefaultOIDCScopes
	QualtricsAllowedHosts []string
	// WebhookAllowedHosts may receive webhooks although they resolve to a
	// loopback or private address (tests, an in-network relay).
	WebhookAllowedHosts []string
	Workers             int      // River workers on the default queue; 0 = web only
	SMTPURL             *url.URL // nil: email off
	MailFrom            string

	// PlatformAdmins may use /console (MICROAPPS_PLATFORM_ADMINS); in oidc
	// mode PlatformAdminGroup, a groups claim value, also grants it.
	PlatformAdmins     []string
	PlatformAdminGroup string

	// DevUsers are offered by the dev sign-in page; only the demo sets them.
	DevUsers []string

	// SMTPCAFile is a PEM file of extra CAs trusted for the SMTP relay only.
	SMTPCAFile string
	// PublicURLDefaulted says PublicURL is the default, not configured: New
	// then refuses to run when an integration has a webhook or Qualtrics
	// events, whose messages and callbacks would name localhost.
	PublicURLDefaulted bool

	// QualtricsClientConfig adjusts each sync's Qualtrics client (tests: fast
	// back-off, request observers).
	QualtricsClientConfig func(*qualtrics.Config)
	// BrandLimits is each Qualtrics brand's budget (zero: Qualtrics' own);
	// benchmarks scale it with the simulator's time scale. Not read from the
	// environment.
	BrandLimits syncer.BrandLimits
	// SyncSliceBudget is how long one sync job works a run before handing it
	// over (zero: 30 s).
	SyncSliceBudget time.Duration
	// FetchCooldown and FetchPollInterval, when not zero, replace River's
	// defaults so tests pick up jobs within milliseconds.
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
	// NoPeriodicJobs leaves out the leader's periodic jobs (the sync
	// scheduler, the notification check, the purge), for tests that queue
	// every sync themselves and count what happens.
	NoPeriodicJobs bool
	// Now is the clock of the syncer, the event service, the pages and the
	// checks after a sync (nil: time.Now). Only the chaos test sets it, to
	// run one replica's clock ahead of the others'.
	Now func() time.Time
}

// Replica is one running replica: its pool, its job client and its HTTP server.
type Replica struct {
	opts      Options
	log       *zap.Logger
	store     *store.Store
	ownsStore bool
	// readStore and reads are the read replica's pool and router; nil
	// without MICROAPPS_DATABASE_READ_URL.
	readStore *store.Store
	reads     *store.ReadRouter
	river     *river.Client[pgx.Tx]
	notifier  *notify.Notifier
	draining  atomic.Bool

	schemaMu      atomic.Pointer[schemaCheck]
	shutdownGrace time.Duration

	// Metrics: served at /metrics from a registry of this replica's own.
	registry *prometheus.Registry
	metrics  *metrics

	syncer    *syncer.Syncer
	events    *events.Service
	lifecycle *lifecycle.Service
	web       *web.Server
	manage    *manage.Service
	jobsUI    *riverui.Handler
}

type schemaCheck struct {
	at  time.Time
	err error
}

// New opens the replica's pool (unless o.Store is given), refuses a schema
// that is not current, and builds its services and River client. River is
// not started: Serve starts it when there are workers.
func New(ctx context.Context, o Options, log *zap.Logger) (*Replica, error) {
	a := &Replica{opts: o, log: log, store: o.Store, shutdownGrace: 20 * time.Second}
	if a.store == nil {
		st, err := store.Open(ctx, o.DatabaseURL, store.Options{AppName: "microapps", MaxConns: PoolSize(o.Workers)})
		if err != nil {
			return nil, err
		}
		a.store, a.ownsStore = st, true
	}
	st := a.store
	a.registry, a.metrics = newMetricsRegistry(st.Pool(), log)
	a.registry.MustRegister(newStateCollector(st, 2*time.Second, log))
	if err := a.checkSchema(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.checkPublicURL(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.setupBackground(); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.setupReadReplica(ctx); err != nil {
		a.Close()
		return nil, err
	}
	var err error
	// One service holds the rules about integrations; the admin API and the
	// console both call it.
	a.manage = manage.New(manage.Options{Store: st, Syncs: a.syncer, Keyring: o.Keyring,
		AllowedHosts: o.QualtricsAllowedHosts, WebhookAllowedHosts: o.WebhookAllowedHosts, Log: log.Named("manage"),
		BeforeDelete: a.lifecycle.BeforeDelete,
		// The deleted integration's data goes in a background job, in batches.
		AfterDelete: a.lifecycle.AfterDelete,
		// Turning events on or off registers or removes the subscriptions at once.
		QueueSubscriptions: a.events.QueueSubscriptions,
		SealWebhookSecret: func(integrationID, secret string) (string, []byte, error) {
			return notify.SealWebhookSecret(o.Keyring, integrationID, secret)
		},
		TestWebhook: a.notifier.SendTestWebhook})
	var jobs http.Handler
	if len(o.PlatformAdmins) > 0 || o.PlatformAdminGroup != "" {
		if a.jobsUI, err = newJobsUI(a.river, log); err != nil {
			log.Warn("River's job UI is not available under /console/jobs", zap.Error(err))
		} else {
			jobs = a.jobsUI
		}
	}
	wo := web.Options{Store: st, Log: log.Named("web"), AuthMode: o.AuthMode, AuthHeader: o.AuthHeader,
		TrustedProxies: o.TrustedProxies, OIDCIssuer: o.OIDCIssuer, OIDCClientID: o.OIDCClientID,
		OIDCClientSecret: o.OIDCClientSecret, OIDCScopes: o.OIDCScopes, PublicURL: o.PublicURL, AllowDevAuth: o.AuthMode == "dev", DevUsers: o.DevUsers,
		Console: true, PlatformAdmins: o.PlatformAdmins, PlatformAdminGroup: o.PlatformAdminGroup, JobsUI: jobs,
		Now: o.Now}
	if a.reads != nil {
		wo.ReadStore, wo.Reads = a.readStore, a.reads
	}
	a.web, err = web.New(wo)
	if err != nil {
		a.Close()
		return nil, err
	}
	// The console's pages, inside the pages' sign-in, sessions and limits.
	co := console.Options{Web: a.web, Manage: a.manage, Jobs: jobs != nil}
	if a.reads != nil {
		co.Standby = a.reads.Status
	}
	a.web.AddRoutes(console.New(co).Routes)
	return a, nil
}

// Close closes the replica's pools (the primary's unless it was given one in
// Options.Store).
func (a *Replica) Close() {
	if a.reads != nil {
		a.reads.Close()
	}
	if a.readStore != nil {
		a.readStore.Close()
	}
	if a.ownsStore {
		a.store.Close()
	}
}

// setupReadReplica opens the read replica's pool and starts its router when
// Options.ReadDatabaseURL is set. It does not wait for the replica: one that
// is down is logged, once, and the pages read from the primary until it
// answers.
func (a *Replica) setupReadReplica(ctx context.Context) error {
	if a.opts.ReadDatabaseURL == "" {
		return nil
	}
	rs, err := store.OpenStandby(ctx, a.opts.ReadDatabaseURL, store.Options{AppName: "microapps-read", MaxConns: 10})
	if err != nil {
		return err
	}
	log := a.log.Named("readreplica")
	a.readStore = rs
	a.reads = store.NewReadRouter(a.store, rs, store.ReadRouterOptions{MaxLag: a.opts.ReadMaxLag, OnRead: a.metrics.PageRead,
		OnChange: func(usable bool, why error) {
			if usable {
				log.Info("the pages read from the read replica")
			} else {
				log.Warn("the pages read from the primary until the read replica is usable again", zap.Error(why))
			}
		}})
	registerReadReplica(a.registry, a.reads)
	return nil
}

// Reads is the read replica's router; nil without one.
func (a *Replica) Reads() *store.ReadRouter { return a.reads }

// Store is the replica's store.
func (a *Replica) Store() *store.Store { return a.store }

// River is the replica's River client. Serve starts and stops it; a caller
// that serves the routes itself starts it (when there are workers).
func (a *Replica) River() *river.Client[pgx.Tx] { return a.river }

// Syncer is the replica's syncer.
func (a *Replica) Syncer() *syncer.Syncer { return a.syncer }

// Notifier is the replica's notifier.
func (a *Replica) Notifier() *notify.Notifier { return a.notifier }

// Events is the replica's event service.
func (a *Replica) Events() *events.Service { return a.events }

// Web is the replica's pages and /api/v1/me.
func (a *Replica) Web() *web.Server { return a.web }

// checkSchema refuses to run against a schema this binary does not expect.
func (a *Replica) checkSchema(ctx context.Context) error {
	st, err := migrations.Check(ctx, a.store.Pool())
	if err != nil {
		return err
	}
	switch {
	case st.Dirty:
		return fmt.Errorf("the database schema is dirty (%s): a migration failed half-way; fix it by hand, then run `microapps migrate up`", st)
	case st.Version > st.Latest || st.River > st.RiverLatest:
		return fmt.Errorf("the database schema is newer than this binary (%s): deploy the newer version", st)
	case !st.Current():
		return fmt.Errorf("the database schema is behind (%s): run `microapps migrate up` first", st)
	}
	return nil
}

// checkPublicURL refuses to serve with the default public URL when links in
// messages or Qualtrics' callbacks depend on it.
func (a *Replica) checkPublicURL(ctx context.Context) error {
	if !a.opts.PublicURLDefaulted {
		return nil
	}
	n, err := a.store.CountIntegrationsNeedingPublicURL(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("MICROAPPS_PUBLIC_URL is required: %d integration(s) have a webhook or Qualtrics events, "+
			"whose messages and callbacks must name this service's external URL, not the default %s", n, a.opts.PublicURL)
	}
	return nil
}

// setupBackground builds the notifier, the syncer and the event service and
// the River client that runs their jobs. A web-only replica (no workers) gets
// a client that only inserts jobs.
func (a *Replica) setupBackground() error {
	var mailer notify.Mailer
	if a.opts.SMTPURL != nil {
		m, err := notify.NewSMTPMailer(a.opts.SMTPURL.String(), a.opts.MailFrom, notify.WithSMTPCAFile(a.opts.SMTPCAFile))
		if err != nil {
			return err
		}
		mailer = m
	}
	// The job client comes first, with an empty bundle of workers: every
	// service is built with it, then adds its workers (River looks them up
	// when it works a job, and refuses to start without any).
	workers := river.NewWorkers()
	rcfg := &river.Config{
		Logger:  slog.New(zapslog.NewHandler(a.log.Named("river").Core(), zapslog.WithName("river"))),
		Workers: workers,
		// A sync run is worked in slices of SliceBudget (30 s), each a job of
		// at most a minute whose progress is recorded, so jobs can be short:
		// a replica killed mid-slice leaves its job running, and River hands
		// it to another replica once it is past its timeout and
		// RescueStuckJobsAfter, well within two minutes. Workers that need
		// longer declare their own Timeout, which the rescuer respects.
		JobTimeout:           time.Minute,
		RescueStuckJobsAfter: 75 * time.Second,
		FetchCooldown:        a.opts.FetchCooldown,
		FetchPollInterval:    a.opts.FetchPollInterval,
	}
	if a.opts.Workers > 0 {
		// Syncs have their own queue, sized by MICROAPPS_WORKERS; event
		// applies have theirs, and notification checks, deliveries and
		// purges run on the default queue: none of them waits behind a sync
		// backlog.
		rcfg.Queues = map[string]river.QueueConfig{
			syncer.Queue:         {MaxWorkers: a.opts.Workers},
			syncer.ScheduleQueue: {MaxWorkers: 1},
			river.QueueDefault:   {MaxWorkers: defaultQueueWorkers},
			events.Queue:         events.QueueConfig(),
		}
	}
	jobs, err := river.NewClient(riverpgxv5.New(a.store.Pool()), rcfg)
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	a.river = jobs
	a.notifier = notify.New(notify.Options{Store: a.store, Jobs: jobs, Keyring: a.opts.Keyring, Log: a.log.Named("notify"),
		PublicURL: a.opts.PublicURL, Mailer: mailer, Metrics: a.metrics, WebhookAllowedHosts: a.opts.WebhookAllowedHosts})
	a.syncer, err = syncer.New(syncer.Options{Store: a.store, Jobs: jobs, Keyring: a.opts.Keyring, AllowedHosts: a.opts.QualtricsAllowedHosts,
		Notifier: a.notifier, Metrics: a.metrics, Log: a.log.Named("syncer"),
		// The lifecycle is built below: it needs the syncer's clients.
		AfterSync: func(ctx context.Context, in store.Integration, c *qualtrics.Client, first bool) (int, error) {
			return a.lifecycle.AfterSync(ctx, in, c, first)
		},
		ClientConfig: a.opts.QualtricsClientConfig, BrandLimits: a.opts.BrandLimits, SliceBudget: a.opts.SyncSliceBudget,
		Now: a.opts.Now})
	if err != nil {
		return err
	}
	a.events, err = events.New(events.Options{Store: a.store, Jobs: jobs, Keyring: a.opts.Keyring, Log: a.log.Named("events"),
		PublicURL: a.opts.PublicURL, Client: a.syncer.Client, Now: a.opts.Now})
	if err != nil {
		return err
	}
	a.lifecycle, err = lifecycle.New(lifecycle.Options{Store: a.store, Jobs: jobs, Events: a.events, Windows: a.notifier,
		Client: a.syncer.Client, PublicURL: a.opts.PublicURL, Metrics: a.metrics, Log: a.log.Named("lifecycle"), Now: a.now})
	if err != nil {
		return err
	}
	a.events.Register(workers)
	a.lifecycle.Register(workers)
	a.notifier.Register(workers)
	a.syncer.Register(workers)
	if a.opts.Workers > 0 && !a.opts.NoPeriodicJobs {
		jobs.PeriodicJobs().AddMany(a.lifecycle.PeriodicJobs())
		jobs.PeriodicJobs().AddMany(a.notifier.PeriodicJobs())
		jobs.PeriodicJobs().AddMany(a.syncer.PeriodicJobs())
	}
	return nil
}

// PoolSize sizes a replica's pool. Syncs, event applies, deliveries and page
// views share it: each sync slice holds one connection for its run's
// advisory lock all along (store.HoldSyncRun) and about two more for its
// units' short page transactions and brand-budget takes; the default queue's
// workers and the scheduler one each; River's leader, notifier and
// producers a few; requests the rest. Three replicas of 4 workers stay
// under PostgreSQL's default 100 connections (3 × 26).
func PoolSize(workers int) int32 {
	return int32(max(12, 3*workers+defaultQueueWorkers+1+9))
}

func (a *Replica) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

// defaultQueueWorkers works notification checks, deliveries and purges.
const defaultQueueWorkers = 4

// Serve listens on Options.HTTPAddr, starts River when there are workers, and
// runs until ctx is cancelled, then drains: readiness turns 503, the
// listener closes, in-flight requests finish, and River stops softly so
// running jobs end at a safe point. ready, when not nil, receives the bound
// address once the server accepts connections.
func (a *Replica) Serve(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", a.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.opts.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           a.Routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	var (
		metricsSrv *http.Server
		mln        net.Listener
	)
	if a.opts.MetricsAddr != "" {
		if mln, err = net.Listen("tcp", a.opts.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s for metrics: %w", a.opts.MetricsAddr, err)
		}
		metricsSrv = &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, ErrorLog: zap.NewStdLog(a.log.Named("http"))}
	}
	riverCtx, stopRiver := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRiver()
	if a.opts.Workers > 0 {
		if err := a.river.Start(riverCtx); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			return fmt.Errorf("river: start: %w", err)
		}
	}
	a.startJobsUI(riverCtx)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if metricsSrv != nil {
		go func() { errc <- metricsSrv.Serve(mln) }()
		a.log.Info("metrics listening", zap.String("addr", mln.Addr().String()))
	}
	a.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.Int("workers", a.opts.Workers))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	a.draining.Store(true)
	shutCtx, cancel := context.WithTimeout(context.Background(), a.shutdownGrace)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if metricsSrv != nil {
		// Scraped until the very end; it holds no request worth draining.
		_ = metricsSrv.Close()
	}
	if a.opts.Workers > 0 {
		if err := a.river.Stop(shutCtx); err != nil {
			a.log.Warn("river did not stop softly in time; cancelling running jobs", zap.Error(err))
			hardCtx, hardCancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = a.river.StopAndCancel(hardCtx)
			hardCancel()
		}
	}
	a.log.Info("stopped")
	return errors.Join(errs...)
}

// Routes is the replica's whole HTTP handler, middleware included, as Serve
// serves it.
func (a *Replica) Routes() http.Handler {
	r := chi.NewRouter()
	// observe sits outside recoverer so a panic is logged and counted as the 500 it becomes.
	r.Use(requestID, transportHeaders(a.opts.PublicURL != nil && a.opts.PublicURL.Scheme == "https"), observe(a.log, a.metrics), recoverer(a.log))
	if a.opts.MetricsAddr == "" {
		r.Method(http.MethodGet, "/metrics", metricsHandler(a.registry, a.log))
	}
	r.Get("/livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", a.readyz)
	r.Handle("/hooks/qualtrics/*", a.events.Receiver())
	r.Mount("/api/v1/me", a.web.MeAPI())
	r.Mount("/", a.web.Handler())
	r.Mount("/api/v1", api.New(api.Options{
		Service: a.manage,
		// The audit actor of an admin token is an HMAC under a key derived from the key ring.
		Keyring:       a.opts.Keyring,
		AdminTokens:   a.opts.AdminTokens,
		Log:           a.log.Named("api"),
		RequestIDFrom: requestIDFrom,
	}))
	return r
}

// MetricsHandler serves /metrics alone, as the MetricsAddr listener does.
func (a *Replica) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(a.registry, a.log))
	return mux
}

// readyz answers 200 only when this replica can serve: not shutting down, the
// database answering and its schema current.
func (a *Replica) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		a.log.Warn("readiness: database unreachable", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "database unreachable\n")
		return
	}
	// The schema only changes on deploys; checking it every few seconds is plenty.
	if c := a.schemaMu.Load(); c == nil || time.Since(c.at) > 10*time.Second {
		c = &schemaCheck{at: time.Now(), err: a.checkSchema(ctx)}
		a.schemaMu.Store(c)
	}
	if c := a.schemaMu.Load(); c.err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "schema not current\n")
		return
	}
	io.WriteString(w, "ok\n")
}
