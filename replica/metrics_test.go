package replica

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/microapps/microapps/lifecycle"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store/storetest"
)

// scrape fetches url and parses the Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value returns the value of the series of family name whose labels include
// all of want, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsAreServedWithRoutePatternsAndAppMetrics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(ctx, Options{
		DatabaseURL:    storetest.NewMigrated(t),
		Keyring:        testKeyring(t),
		AuthMode:       "header",
		AuthHeader:     "X-Forwarded-Email",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		PublicURL:      &url.URL{Scheme: "http", Host: "localhost:8080"},
		Workers:        0,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Routes())
	defer srv.Close()

	for range 3 {
		resp, err := http.Get(srv.URL + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, p := range []string{"/no/such/page/1", "/no/such/page/2"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	// A queued job shows up in the queue depth, which is read from the database.
	if _, err := a.river.Insert(ctx, lifecycle.PurgeArgs{}, nil); err != nil {
		t.Fatalf("insert job: %v", err)
	}
	finished := time.Unix(1_700_000_000, 0)
	a.metrics.ObserveQualtricsCall("/surveys", qualtricsRateLimited, true)
	a.metrics.ObserveQualtricsCall("/surveys", qualtricsOK, false)
	a.metrics.SyncFinished("full", "succeeded", 42*time.Second, "int-1", finished)
	a.metrics.SyncFinished("incremental", "failed", time.Second, "int-2", finished)
	a.metrics.NotificationRaised("new_survey")
	a.metrics.Delivery("email", "sent")
	a.metrics.ObserveMalformedValues("distributions.links", 3)

	fams := scrape(t, srv.URL+"/metrics")
	for _, name := range []string{
		"microapps_http_requests_total",
		"microapps_http_request_duration_seconds",
		"microapps_qualtrics_requests_total",
		"microapps_qualtrics_retries_total",
		"microapps_qualtrics_rate_limited_total",
		"microapps_qualtrics_malformed_values_total",
		"microapps_sync_runs_total",
		"microapps_sync_duration_seconds",
		"microapps_last_successful_sync_timestamp_seconds",
		"microapps_notifications_raised_total",
		"microapps_deliveries_total",
		"microapps_river_jobs",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"microapps_http_requests_total", map[string]string{"route": "/livez", "method": "GET", "status": "200"}, 3},
		{"microapps_http_request_duration_seconds", map[string]string{"route": "/livez", "method": "GET"}, 3},
		{"microapps_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "status": "404"}, 2},
		{"microapps_qualtrics_requests_total", map[string]string{"endpoint": "/surveys", "outcome": "rate_limited"}, 1},
		{"microapps_qualtrics_requests_total", map[string]string{"endpoint": "/surveys", "outcome": "ok"}, 1},
		{"microapps_qualtrics_retries_total", map[string]string{"endpoint": "/surveys"}, 1},
		{"microapps_qualtrics_rate_limited_total", map[string]string{"endpoint": "/surveys"}, 1},
		{"microapps_qualtrics_malformed_values_total", map[string]string{"endpoint": "distributions.links"}, 3},
		{"microapps_sync_runs_total", map[string]string{"kind": "full", "result": "succeeded"}, 1},
		{"microapps_sync_runs_total", map[string]string{"kind": "incremental", "result": "failed"}, 1},
		{"microapps_sync_duration_seconds", map[string]string{"kind": "full"}, 1},
		{"microapps_last_successful_sync_timestamp_seconds", map[string]string{"integration_id": "int-1"}, 1_700_000_000},
		{"microapps_notifications_raised_total", map[string]string{"kind": "new_survey"}, 1},
		{"microapps_deliveries_total", map[string]string{"channel": "email", "result": "sent"}, 1},
		{"microapps_river_jobs", map[string]string{"state": "available"}, 1},
		{"microapps_river_jobs", map[string]string{"state": "running"}, 0},
	} {
		got, ok := value(fams, tc.name, tc.labels)
		if !ok {
			t.Errorf("%s%v: no such series", tc.name, tc.labels)
		} else if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// The raw path of an unmatched request must never become a label value.
	for _, m := range fams["microapps_http_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" && lp.GetValue() != "/livez" && lp.GetValue() != "unmatched" && lp.GetValue() != "/metrics" {
				t.Errorf("unexpected route label %q", lp.GetValue())
			}
		}
	}
	// A failed sync does not move the last-success time of its integration.
	if _, ok := value(fams, "microapps_last_successful_sync_timestamp_seconds", map[string]string{"integration_id": "int-2"}); ok {
		t.Error("a failed sync set last_successful_sync_timestamp_seconds")
	}
}

func TestMetricsSurviveAnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	reg, m := newMetricsRegistry(failingQuerier{}, zap.NewNop())
	m.NotificationRaised("new_survey")
	srv := httptest.NewServer(metricsHandler(reg, zap.NewNop()))
	defer srv.Close()
	fams := scrape(t, srv.URL)
	if _, ok := fams["microapps_river_jobs"]; ok {
		t.Error("river jobs reported although the database failed")
	}
	if got, _ := value(fams, "microapps_notifications_raised_total", map[string]string{"kind": "new_survey"}); got != 1 {
		t.Errorf("notifications_raised_total = %v, want 1: other metrics must still be served", got)
	}
}

func TestMetricMethodFoldsUnknownMethods(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "PROPFIND": "OTHER", "get": "OTHER"} {
		if got := metricMethod(in); got != want {
			t.Errorf("metricMethod(%q) = %q, want %q", in, got, want)
		}
	}
}

// testKeyring is a fixed one-key keyring.
func testKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type failingQuerier struct{}

func (failingQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("connection refused")
}
