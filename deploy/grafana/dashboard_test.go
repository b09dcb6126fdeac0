package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store/storetest"
)

func TestCommittedDashboardIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := dashboardJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("microapps.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/grafana/microapps.json is not what the program builds: run `go run ./deploy/grafana` and commit it")
	}
}

// promQuery is one PromQL expression and where it was found.
type promQuery struct{ where, expr string }

// dashboardQueries walks the dashboard's JSON for every panel target's expr
// and every query variable.
func dashboardQueries(t *testing.T) []promQuery {
	t.Helper()
	b, err := dashboardJSON()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var qs []promQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without expr", p.Title)
			}
			qs = append(qs, promQuery{"panel " + p.Title, tg.Expr})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		s, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
			continue
		}
		qs = append(qs, promQuery{"variable " + v.Name, m[1]})
	}
	if len(qs) < 20 {
		t.Fatalf("only %d queries in the dashboard", len(qs))
	}
	return qs
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleQueries reads deploy/prometheus's rules, and the names the recording
// rules define.
func ruleQueries(t *testing.T) (qs []promQuery, recorded map[string]bool) {
	t.Helper()
	recorded = map[string]bool{}
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("..", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				qs = append(qs, promQuery{f + " " + r.Record + r.Alert, r.Expr})
				if r.Record != "" {
					recorded[r.Record] = true
				}
			}
		}
	}
	return qs, recorded
}

// grafanaVars replaces Grafana's variables by values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"${integration}", "x", "$integration", "x")

var promql = parser.NewParser(parser.Options{})

// metricNames parses expr with Prometheus' own parser and returns the
// metric names its selectors name.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names, nil
}

func TestEveryQueryParsesWithPromQLsParser(t *testing.T) {
	t.Parallel()
	rules, _ := ruleQueries(t)
	for _, q := range append(dashboardQueries(t), rules...) {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		if len(names) == 0 && !strings.HasPrefix(q.where, "variable") {
			t.Errorf("%s names no metric: %s", q.where, q.expr)
		}
	}
}

func TestTheParserCheckRejectsBadQueries(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`sum(rate(microapps_http_requests_total[5m])`, `sum by (le (microapps_x)`, `foo bar`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	names, err := metricNames(`histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="$integration"}[$__rate_interval]))) / b`)
	if err != nil || !slices.Equal(names, []string{"a_bucket", "b"}) {
		t.Errorf("names = %v, %v", names, err)
	}
}

// notExportedYet are metrics a rule waits for (docs/RUNBOOK.md says which):
// only alerts.yml may name them, and its promtool tests feed them.
var notExportedYet = map[string]bool{}

// TestEveryMetricIsExportedByARunningReplica runs a replica against a
// simulated Qualtrics, makes it sync (with 429s), notify, deliver and serve
// pages, then reads its /metrics: every metric the dashboard and the rules
// name must be there, or be a recording rule's.
func TestEveryMetricIsExportedByARunningReplica(t *testing.T) {
	t.Parallel()
	families := liveMetrics(t)
	t.Logf("exported: %v", slices.Sorted(maps.Keys(families)))
	exported := func(name string) bool {
		for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && families[base] {
				return true
			}
		}
		return false
	}
	rules, recorded := ruleQueries(t)
	for _, q := range append(dashboardQueries(t), rules...) {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		for _, n := range names {
			switch {
			case exported(n), recorded[n]:
			case n == "up": // Prometheus' own, one per scrape target
			case notExportedYet[n] && strings.HasPrefix(q.where, "alerts.yml"):
				t.Logf("%s waits for %s, which the service does not export yet", q.where, n)
			default:
				t.Errorf("%s names %s, which a running replica does not export", q.where, n)
			}
		}
	}
}

// liveMetrics returns the metric families a running replica serves after it
// did each kind of work the dashboard shows.
func liveMetrics(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	now := time.Now()
	brand := qualtricssim.Generate(35, qualtricssim.Spec{BrandID: "opsbrand", Surveys: 3, Recipients: 30, Now: now})
	// A small budget in 1-second windows: the first sync meets 429s.
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand},
		Limits: &qualtricssim.Limits{BrandPerMinute: 6, RetryAfter: true, TimeScale: 60}})
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()

	key, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	const token = "ops-admin-token-0123456789abcdef"
	a, err := replica.New(ctx, replica.Options{
		DatabaseURL: storetest.NewMigrated(t),
		// Any database serves to register the read replica's metrics: one
		// that is not a standby is reported down, and pages read the primary.
		ReadDatabaseURL:       storetest.NewDatabase(t),
		HTTPAddr:              "127.0.0.1:0",
		PublicURL:             &url.URL{Scheme: "http", Host: "localhost:8080"},
		AdminTokens:           []string{token},
		Keyring:               key,
		AuthMode:              "header",
		AuthHeader:            "X-Forwarded-Email",
		TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		QualtricsAllowedHosts: []string{"127.0.0.1"},
		// A relay that does not answer: each email delivery is tried,
		// fails and is counted for retry.
		SMTPURL:               &url.URL{Scheme: "smtp", Host: closedAddr(t), RawQuery: "tls=none"},
		MailFrom:              "microapps@example.com",
		Workers:               2,
		FetchCooldown:         20 * time.Millisecond,
		FetchPollInterval:     50 * time.Millisecond,
		QualtricsClientConfig: func(c *qualtrics.Config) { c.BackoffBase, c.BackoffMax = 10*time.Millisecond, 100*time.Millisecond },
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ready) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		<-done
	}()

	call := func(method, path string, body any, out any) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, r)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
	}
	waitRuns := func(id string, n int) {
		t.Helper()
		for {
			var runs struct {
				Items []struct {
					Status string `json:"status"`
				} `json:"items"`
			}
			call("GET", "/api/v1/integrations/"+id+"/syncs", nil, &runs)
			finished := 0
			for _, r := range runs.Items {
				if r.Status == "succeeded" || r.Status == "failed" {
					finished++
				}
			}
			if finished >= n {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("integration %s: %d of %d runs finished", id, finished, n)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	var created struct {
		ID string `json:"id"`
	}
	call("POST", "/api/v1/integrations", map[string]any{"name": "Operations", "baseUrl": simSrv.URL + "/API/v3/",
		"token": brand.Users[0].Tokens[0]}, &created)
	waitRuns(created.ID, 1)

	// A new survey reaching erin raises a notification, which is delivered
	// by email.
	sv, err := sim.AddSurvey(brand.ID, qualtricssim.Survey{Name: "Ops check", IsActive: true, CreationDate: now,
		LastModifiedDate: now, StartDate: now, EndDate: now.Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, LinkExpiration: now.Add(48 * time.Hour),
		Recipients: []qualtricssim.Recipient{{Email: "erin@example.com", FirstName: "Erin", Status: "Success", SentAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	call("POST", "/api/v1/integrations/"+created.ID+"/syncs", map[string]any{"kind": "incremental"}, nil)
	waitRuns(created.ID, 2)

	for _, p := range []string{"/", "/notifications", "/api/v1/me/surveys"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+p, nil)
		req.Header.Set("X-Forwarded-Email", "erin@example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", p, resp.Status)
		}
	}

	// Deliveries run in jobs after the sync: wait for them to be counted.
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams := scrape(t, ctx, base+"/metrics")
		if fams["microapps_deliveries_total"] || time.Now().After(deadline) {
			if sim.Throttled() == 0 {
				t.Error("the simulator answered no 429: the rate-limit metrics were not exercised")
			}
			return fams
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func scrape(t *testing.T, ctx context.Context, u string) map[string]bool {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for n := range fams {
		names[n] = true
	}
	// The pages' SLI selects every route but the admin API's, the hooks',
	// the probes' and "unmatched": the pages just requested must carry one
	// it selects, /api/v1/me's included.
	routes := map[string]bool{}
	for _, m := range fams["microapps_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				routes[l.GetValue()] = true
			}
		}
	}
	notPages := regexp.MustCompile(`^(?:/api/v1/integrations.*|/api/v1/openapi.yaml|/hooks/.*|/livez|/readyz|/metrics|unmatched)$`)
	var pageRoutes []string
	for r := range routes {
		if !notPages.MatchString(r) {
			pageRoutes = append(pageRoutes, r)
		}
	}
	if names["microapps_page_reads_total"] && (len(pageRoutes) == 0 || !slices.ContainsFunc(pageRoutes, func(r string) bool {
		return strings.HasPrefix(r, "/api/v1/me/")
	})) {
		t.Errorf("the pages were served under routes %v, none of them a page's and /api/v1/me's the SLI selects", slices.Sorted(maps.Keys(routes)))
	}
	return names
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
