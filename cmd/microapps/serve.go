package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/web"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("serve takes no arguments, configuration comes from MICROAPPS_* variables")
	}
	cfg, err := loadConfig(getenv, useServe)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(stdout, false, zapcore.InfoLevel)
	defer log.Sync() //nolint:errcheck
	log.Info("starting microapps", append([]zap.Field{zap.String("version", buildVersion())}, cfg.logFields()...)...)

	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	return a.serve(ctx, nil)
}

// app is one running replica: its pool, its job client and its HTTP server.
type app struct {
	cfg      *config
	log      *zap.Logger
	store    *store.Store
	river    *river.Client[pgx.Tx]
	notifier *notify.Notifier
	draining atomic.Bool

	schemaMu      atomic.Pointer[schemaCheck]
	shutdownGrace time.Duration

	// Metrics: served at /metrics from a registry of this app's own.
	registry *prometheus.Registry
	metrics  *metrics

	// devUsers are offered by the dev sign-in page; only the demo sets them.
	devUsers []string

	syncer *syncer.Syncer
	events *events.Service
	web    *web.Server
}

type schemaCheck struct {
	at  time.Time
	err error
}

func newApp(ctx context.Context, cfg *config, log *zap.Logger, devUsers ...string) (*app, error) {
	// Syncs, event applies, deliveries and page views share the pool: size it
	// for the workers plus headroom for requests.
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{AppName: "microapps", MaxConns: int32(max(12, 2*cfg.Workers+10))})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: st, shutdownGrace: 20 * time.Second, devUsers: devUsers}
	a.registry, a.metrics = newMetricsRegistry(st.Pool(), log)
	if err := a.checkSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := a.setupBackground(); err != nil {
		st.Close()
		return nil, err
	}
	a.web, err = web.New(web.Options{Store: st, Log: log.Named("web"), AuthMode: cfg.AuthMode, AuthHeader: cfg.AuthHeader,
		TrustedProxies: cfg.TrustedProxies, OIDCIssuer: cfg.OIDCIssuer, OIDCClientID: cfg.OIDCClientID,
		OIDCClientSecret: cfg.OIDCClientSecret, PublicURL: cfg.PublicURL, AllowDevAuth: cfg.AuthMode == "dev", DevUsers: a.devUsers})
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) close() { a.store.Close() }

// checkSchema refuses to run against a schema this binary does not expect.
func (a *app) checkSchema(ctx context.Context) error {
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

// setupBackground builds the notifier, the syncer and the event service and
// the River client that runs their jobs. A web-only replica (no workers) gets
// a client that only inserts jobs.
func (a *app) setupBackground() error {
	var mailer notify.Mailer
	if a.cfg.SMTPURL != nil {
		m, err := notify.NewSMTPMailer(a.cfg.SMTPURL.String(), a.cfg.MailFrom)
		if err != nil {
			return err
		}
		mailer = m
	}
	a.notifier = notify.New(notify.Options{Store: a.store, Keyring: a.cfg.Keyring, Log: a.log.Named("notify"),
		PublicURL: a.cfg.PublicURL, Mailer: mailer, Metrics: a.metrics})
	sy, err := syncer.New(syncer.Options{Store: a.store, Keyring: a.cfg.Keyring, AllowedHosts: a.cfg.QualtricsAllowedHosts,
		Notifier: a.notifier, Metrics: a.metrics, Log: a.log.Named("syncer"), AfterSync: a.afterSync})
	if err != nil {
		return err
	}
	a.syncer = sy
	ev, err := events.New(events.Options{Store: a.store, Keyring: a.cfg.Keyring, Log: a.log.Named("events")})
	if err != nil {
		return err
	}
	a.events = ev
	workers := river.NewWorkers()
	a.events.Register(workers)
	river.AddWorker(workers, &purgeWorker{store: a.store, log: a.log})
	a.notifier.Register(workers)
	a.syncer.Register(workers)
	rcfg := &river.Config{
		Logger:  slog.New(zapslog.NewHandler(a.log.Named("river").Core(), zapslog.WithName("river"))),
		Workers: workers,
		// A sync that runs out of time stops at a page boundary and the next run
		// continues, so a bounded job is safe. A replica killed mid-job leaves it
		// running; River hands it to another replica once it is past the timeout.
		JobTimeout:           15 * time.Minute,
		RescueStuckJobsAfter: 16 * time.Minute,
	}
	if a.cfg.Workers > 0 {
		// Event applies get their own queue: minutes-long syncs on the default
		// queue must not hold back a finished survey leaving a user's list.
		rcfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: a.cfg.Workers}, events.Queue: events.QueueConfig()}
		rcfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(10*time.Minute), func() (river.JobArgs, *river.InsertOpts) {
				return purgeArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
			}, &river.PeriodicJobOpts{ID: "purge", RunOnStart: true}),
		}
		rcfg.PeriodicJobs = append(rcfg.PeriodicJobs, a.notifier.PeriodicJobs()...)
		rcfg.PeriodicJobs = append(rcfg.PeriodicJobs, a.syncer.PeriodicJobs()...)
	}
	c, err := river.NewClient(riverpgxv5.New(a.store.Pool()), rcfg)
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	a.river = c
	a.notifier.SetRiver(c)
	a.syncer.SetRiver(c)
	a.events.SetRiver(c)
	return nil
}

// afterSync runs after each successful sync: events that waited for their
// survey or recipient are applied, event subscriptions follow the active
// surveys (or go when events were turned off), and the time-based
// notification rules run for that integration, so an expiry window that
// opened is announced now rather than at the next periodic check. The first
// sync raises nothing.
func (a *app) afterSync(ctx context.Context, in store.Integration, client *qualtrics.Client, firstSync bool) (int, error) {
	var errs []error
	if _, err := a.events.ReapplyPending(ctx, in.ID, time.Now()); err != nil {
		errs = append(errs, err)
	}
	if in.EventsEnabled {
		if err := a.events.SyncSubscriptions(ctx, in, client, a.cfg.PublicURL); err != nil {
			errs = append(errs, err)
		}
	} else if subs, err := a.store.ListEventSubscriptions(ctx, in.ID); err == nil && len(subs) > 0 {
		if err := a.events.RemoveAll(ctx, in, client); err != nil {
			errs = append(errs, err)
		}
	}
	raised := 0
	if !firstSync {
		n, err := a.notifier.CheckWindows(ctx, in.ID, time.Now())
		raised += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return raised, errors.Join(errs...)
}

// beforeDelete removes an integration's event subscriptions from Qualtrics
// while its credential is still stored.
func (a *app) beforeDelete(ctx context.Context, in store.Integration) error {
	subs, err := a.store.ListEventSubscriptions(ctx, in.ID)
	if err != nil || len(subs) == 0 {
		return err
	}
	client, err := a.syncer.Client(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.events.RemoveAll(ctx, in, client)
}

// serve runs until ctx is cancelled, then drains: readiness turns 503, the
// listener closes, in-flight requests finish, and River stops softly so
// running jobs end at a safe point. ready, when not nil, receives the bound
// address once the server accepts connections.
func (a *app) serve(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	riverCtx, stopRiver := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRiver()
	if a.cfg.Workers > 0 {
		if err := a.river.Start(riverCtx); err != nil {
			ln.Close()
			return fmt.Errorf("river: start: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.Int("workers", a.cfg.Workers))
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
	if a.cfg.Workers > 0 {
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

func (a *app) routes() http.Handler {
	r := chi.NewRouter()
	// observe sits outside recoverer so a panic is logged and counted as the 500 it becomes.
	r.Use(requestID, observe(a.log, a.metrics), recoverer(a.log))
	r.Method(http.MethodGet, "/metrics", metricsHandler(a.registry, a.log))
	r.Get("/livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", a.readyz)
	r.Handle("/hooks/qualtrics/*", a.events.Receiver())
	r.Mount("/api/v1/me", a.web.MeAPI())
	r.Mount("/", a.web.Handler())
	r.Mount("/api/v1", api.New(api.Options{
		Store:         a.store,
		Syncs:         a.syncs(),
		Keyring:       a.cfg.Keyring,
		AdminTokens:   a.cfg.AdminTokens,
		AllowedHosts:  a.cfg.QualtricsAllowedHosts,
		Log:           a.log.Named("api"),
		RequestIDFrom: requestIDFrom,
		BeforeDelete:  a.beforeDelete,
		SealWebhookSecret: func(integrationID, secret string) (string, []byte, error) {
			return notify.SealWebhookSecret(a.cfg.Keyring, integrationID, secret)
		},
	}))
	return r
}

// syncs is the sync control the admin API uses.
func (a *app) syncs() api.Syncs { return a.syncer }

// readyz answers 200 only when this replica can serve: not shutting down, the
// database answering and its schema current.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
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
