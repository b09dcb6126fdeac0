package replica

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// metrics holds every application metric of one replica. It is registered on
// a registry of its own (never the process-global default), so tests and
// several replicas in one process do not collide.
//
// Other packages get it through small interfaces declared where they are
// used, for example in qualtrics:
//
//	type callObserver interface{ ObserveQualtricsCall(endpoint, outcome string, retry bool) }
type metrics struct {
	httpRequests       *prometheus.CounterVec
	httpDuration       *prometheus.HistogramVec
	qualtricsRequests  *prometheus.CounterVec
	qualtricsRetries   *prometheus.CounterVec
	qualtricsLimited   *prometheus.CounterVec
	qualtricsMalformed *prometheus.CounterVec
	syncRuns           *prometheus.CounterVec
	syncVetoed         *prometheus.CounterVec
	syncDuration       *prometheus.HistogramVec
	lastSuccessfulSync *prometheus.GaugeVec
	notifications      *prometheus.CounterVec
	deliveries         *prometheus.CounterVec
	purgedRows         *prometheus.CounterVec
	pageReads          *prometheus.CounterVec
}

// Outcomes of one HTTP request to Qualtrics, the values of the outcome label.
const (
	qualtricsOK          = "ok"
	qualtricsRateLimited = "rate_limited" // 429
	qualtricsClientError = "client_error" // other 4xx
	qualtricsServerError = "server_error" // 5xx
	qualtricsTimeout     = "timeout"
	qualtricsNetwork     = "network_error"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "microapps"
	m := &metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests served, by chi route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by chi route pattern and method.",
			// Prometheus' defaults with 0.2 s, the page latency SLO's bound.
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		qualtricsRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "qualtrics_requests_total",
			Help: "HTTP requests sent to Qualtrics (retries included), by endpoint template and outcome.",
		}, []string{"endpoint", "outcome"}),
		qualtricsRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "qualtrics_retries_total",
			Help: "Requests to Qualtrics that were retries of an earlier attempt, by endpoint template.",
		}, []string{"endpoint"}),
		qualtricsLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "qualtrics_rate_limited_total",
			Help: "Responses 429 Too Many Requests from Qualtrics, by endpoint template.",
		}, []string{"endpoint"}),
		qualtricsMalformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "qualtrics_malformed_values_total",
			Help: "Values in Qualtrics answers that could not be read and were taken as absent (dates that are no date), by endpoint template.",
		}, []string{"endpoint"}),
		syncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sync_runs_total",
			Help: "Finished sync runs, by kind (full, incremental) and result (succeeded, failed).",
		}, []string{"kind", "result"}),
		syncVetoed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sync_runs_vetoed_total",
			Help: "Sync runs that removed nothing because they would have removed more than the integration's veto rule allows, by kind (the run's warning and the log name the integration).",
		}, []string{"kind"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "sync_duration_seconds",
			Help: "Duration of finished sync runs, by kind.",
			// A small brand syncs in seconds; a large one's full sync can reach
			// the 15-minute job timeout.
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800},
		}, []string{"kind"}),
		lastSuccessfulSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "last_successful_sync_timestamp_seconds",
			Help: "Unix time at which the last successful sync of an integration finished, as seen by this replica.",
		}, []string{"integration_id"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "notifications_raised_total",
			Help: "Notifications raised, by kind (new_survey, survey_expiring, survey_statistics).",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "deliveries_total",
			Help: "Notification delivery attempts, by channel (feed, email, webhook) and result.",
		}, []string{"channel", "result"}),
		purgedRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "purged_rows_total",
			Help: "Rows deleted by retention purges and by the removal of deleted integrations, by table.",
		}, []string{"table"}),
		pageReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "page_reads_total",
			Help: "Reads of the pages and /api/v1/me when a read replica is configured, by target (primary, replica); " +
				"a request read again from the primary after the replica failed counts once for each.",
		}, []string{"target"}),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.qualtricsRequests, m.qualtricsRetries,
		m.qualtricsLimited, m.qualtricsMalformed, m.syncRuns, m.syncVetoed, m.syncDuration, m.lastSuccessfulSync, m.notifications, m.deliveries, m.purgedRows,
		m.pageReads)
	// Exported at 0 from the start: an alert on its increase needs the series.
	m.syncVetoed.WithLabelValues(string(microapps.SyncFull))
	m.syncVetoed.WithLabelValues(string(microapps.SyncIncremental))
	return m
}

// newMetricsRegistry builds the registry a replica serves at /metrics: the
// application metrics, River's queue depth read from pool at scrape time, and
// the Go runtime and process collectors.
func newMetricsRegistry(pool rowQuerier, log *zap.Logger) (*prometheus.Registry, *metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newRiverJobsCollector(pool, 2*time.Second, log),
	)
	return reg, newMetrics(reg)
}

// metricsHandler serves reg. A collector that fails (the database is down, so
// River's queue depth is unknown) is logged and left out; the other metrics
// are still served, because a failing scrape would also hide the HTTP and
// runtime metrics that help diagnose the outage.
func metricsHandler(reg *prometheus.Registry, log *zap.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            zap.NewStdLog(log.Named("metrics")),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// ObserveQualtricsCall counts one HTTP request sent to Qualtrics. endpoint must
// be a template such as "/distributions/{id}/history", never a raw path, to
// keep the label set bounded; outcome is one of the qualtrics* outcomes; retry
// says whether the request repeated an earlier attempt.
func (m *metrics) ObserveQualtricsCall(endpoint, outcome string, retry bool) {
	m.qualtricsRequests.WithLabelValues(endpoint, outcome).Inc()
	if retry {
		m.qualtricsRetries.WithLabelValues(endpoint).Inc()
	}
	if outcome == qualtricsRateLimited {
		m.qualtricsLimited.WithLabelValues(endpoint).Inc()
	}
}

// The syncer reports malformed values through an optional interface.
var _ syncer.MalformedMetrics = (*metrics)(nil)

// ObserveMalformedValues counts n values of an endpoint's answers that could
// not be read (see qualtrics.DecodeWarnings).
func (m *metrics) ObserveMalformedValues(endpoint string, n int) {
	m.qualtricsMalformed.WithLabelValues(endpoint).Add(float64(n))
}

// SyncFinished records a finished sync run. result is the run's final status
// (succeeded or failed); at is when it finished.
func (m *metrics) SyncFinished(kind microapps.SyncKind, result microapps.RunStatus, d time.Duration, integrationID string, at time.Time) {
	m.syncRuns.WithLabelValues(string(kind), string(result)).Inc()
	m.syncDuration.WithLabelValues(string(kind)).Observe(d.Seconds())
	if result == microapps.RunSucceeded {
		m.lastSuccessfulSync.WithLabelValues(integrationID).Set(float64(at.UnixNano()) / 1e9)
	}
}

// SyncVetoed counts a run the veto rule held back (syncer.VetoMetrics).
func (m *metrics) SyncVetoed(kind microapps.SyncKind, _ string) {
	m.syncVetoed.WithLabelValues(string(kind)).Inc()
}

// ForgetIntegration drops the series of a deleted integration.
func (m *metrics) ForgetIntegration(integrationID string) {
	m.lastSuccessfulSync.DeleteLabelValues(integrationID)
}

// NotificationRaised counts one notification raised (not its deliveries).
func (m *metrics) NotificationRaised(kind microapps.NotificationKind) {
	m.notifications.WithLabelValues(string(kind)).Inc()
}

// Delivery counts one delivery attempt of a notification on a channel.
func (m *metrics) Delivery(channel microapps.Channel, result string) {
	m.deliveries.WithLabelValues(string(channel), result).Inc()
}

// metricMethod folds methods a client made up into one label value.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// rowQuerier is the part of *pgxpool.Pool the queue-depth collector uses.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// riverJobsCollector reports River's jobs by state, counted in the database at
// scrape time. Every replica reports the same cluster-wide numbers, so
// aggregate them with max(), not sum().
type riverJobsCollector struct {
	db      rowQuerier
	timeout time.Duration
	log     *zap.Logger
	desc    *prometheus.Desc
}

func newRiverJobsCollector(db rowQuerier, timeout time.Duration, log *zap.Logger) *riverJobsCollector {
	return &riverJobsCollector{
		db: db, timeout: timeout, log: log,
		desc: prometheus.NewDesc("microapps_river_jobs",
			"River jobs in the database by state (queue depth: available, scheduled, retryable); the same for every replica.",
			[]string{"state"}, nil),
	}
}

func (c *riverJobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

const riverJobsByStateSQL = `SELECT state::text, count(*) FROM river_job GROUP BY state`

func (c *riverJobsCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.count()
	if err != nil {
		c.log.Warn("metrics: counting river jobs", zap.Error(err))
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	// Every state is reported, zero included, so a rule on an absent series
	// does not silently never fire.
	for _, s := range rivertype.JobStates() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
	}
}

func (c *riverJobsCollector) count() (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.db.Query(ctx, riverJobsByStateSQL)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	var (
		state string
		n     int64
	)
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		counts[state] = n
		return nil
	})
	return counts, err
}

// PageRead counts one read of the pages from target (store.ReadPrimary or
// store.ReadReplica).
func (m *metrics) PageRead(target string) {
	m.pageReads.WithLabelValues(target).Inc()
}

// registerReadReplica adds the read replica's state, read from the router's
// last check at scrape time.
func registerReadReplica(reg prometheus.Registerer, r *store.ReadRouter) {
	const ns = "microapps"
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "read_replica_up",
			Help: "1 when the read replica answered the last check and is a standby in recovery, else 0.",
		}, func() float64 {
			if r.Status().OK {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "read_replica_staleness_seconds",
			Help: "How far behind the primary the read replica's data may be: the age of the newest primary WAL position it has replayed " +
				"(pages read from the primary beyond 5 s). -1 when it does not answer.",
		}, func() float64 {
			st := r.Status()
			if !st.OK || st.FreshAsOf.IsZero() {
				return -1
			}
			return time.Since(st.FreshAsOf).Seconds()
		}),
	)
}

// Purged counts rows a purge or an integration's removal deleted from table.
func (m *metrics) Purged(table string, n int64) {
	if n > 0 {
		m.purgedRows.WithLabelValues(table).Add(float64(n))
	}
}

// stateSource is what the service-state collector reads (*store.Store).
type stateSource interface {
	OutboxOldestPending(ctx context.Context) (map[microapps.Channel]time.Time, error)
	IntegrationsByStatus(ctx context.Context) (map[microapps.IntegrationStatus]int64, error)
}

// stateCollector reports the service's state read from the database at
// scrape time: integrations by status, and the age of each channel's oldest
// pending delivery (the outbox backing up). Both read an index or a small
// table. Every replica reports the same numbers: aggregate with max().
type stateCollector struct {
	db           stateSource
	timeout      time.Duration
	log          *zap.Logger
	now          func() time.Time
	integrations *prometheus.Desc
	outbox       *prometheus.Desc
}

func newStateCollector(db stateSource, timeout time.Duration, log *zap.Logger) *stateCollector {
	return &stateCollector{db: db, timeout: timeout, log: log, now: time.Now,
		integrations: prometheus.NewDesc("microapps_integrations",
			"Integrations by status (active, paused, error: Qualtrics refused the credential); the same for every replica.",
			[]string{"status"}, nil),
		outbox: prometheus.NewDesc("microapps_outbox_oldest_pending_seconds",
			"Age of the oldest delivery not yet made, by channel (0 when none waits): the outbox backing up; the same for every replica.",
			[]string{"channel"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.integrations
	ch <- c.outbox
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if counts, err := c.db.IntegrationsByStatus(ctx); err != nil {
		c.log.Warn("metrics: counting integrations", zap.Error(err))
		ch <- prometheus.NewInvalidMetric(c.integrations, err)
	} else {
		// Every status, zero included: a rule on an absent series never fires.
		for _, s := range microapps.IntegrationStatuses {
			ch <- prometheus.MustNewConstMetric(c.integrations, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
	if oldest, err := c.db.OutboxOldestPending(ctx); err != nil {
		c.log.Warn("metrics: reading the outbox", zap.Error(err))
		ch <- prometheus.NewInvalidMetric(c.outbox, err)
	} else {
		now := c.now()
		for _, channel := range microapps.Channels {
			age := 0.0
			if at, ok := oldest[channel]; ok {
				age = max(0, now.Sub(at).Seconds())
			}
			ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, age, string(channel))
		}
	}
}
