package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// expiringWorld makes one recipient whose link expires 20 h after t0, so a
// check at t0 raises exactly one survey_expiring notification.
func expiringWorld(f *fixture, in integrationRow) string {
	integ := f.integration(in)
	f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse"})
	f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1"})
	f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com",
		Link: "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=abc", LinkExpiration: at(20 * h)})
	return integ
}

func keyring(t testing.TB) *seal.Keyring {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func deliveryIDs(f *fixture, channel string) []int64 {
	f.t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT id FROM deliveries WHERE channel = $1 ORDER BY id`, channel)
	if err != nil {
		f.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func TestOutboxEnqueuesDeliveriesInTheSameTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := notify.New(notify.Options{Store: f.s, Mailer: &fakeMailer{}, Jobs: insertOnlyRiver(t, f.s)})
	integ := expiringWorld(f, integrationRow{WebhookURL: "http://127.0.0.1:1/hook"})
	f.dist(integ, distRow{ID: "EMD_2", SurveyID: "SV_1"})
	f.recip(integ, recipRow{Dist: "EMD_2", Contact: "CID_2", Survey: "SV_1", Email: "bob@example.com"})

	t.Run("a sync transaction rolled back leaves no notification, delivery or job", func(t *testing.T) {
		tx, err := f.s.Pool().Begin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		raised, err := n.OnChanges(f.ctx, tx, store.Integration{ID: integ}, []store.Change{delivered("EMD_2", "CID_2")}, t0)
		if err != nil || raised != 1 {
			t.Fatalf("raised %d, %v", raised, err)
		}
		var jobs int
		if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM river_job WHERE kind = 'deliver'`).Scan(&jobs); err != nil || jobs != 2 {
			t.Fatalf("inside the transaction: %d deliver jobs (%v), want 2", jobs, err)
		}
		if err := tx.Rollback(f.ctx); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"notifications", "deliveries", "river_job"} {
			if c := f.count(`SELECT count(*) FROM ` + table); c != 0 {
				t.Fatalf("%d rows in %s after rollback", c, table)
			}
		}
	})

	t.Run("each notification gets one delivery and one job per channel", func(t *testing.T) {
		raised, err := n.CheckWindows(f.ctx, "", t0)
		if err != nil || raised != 1 {
			t.Fatalf("raised %d, %v", raised, err)
		}
		if c := f.count(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempts = 0`); c != 2 {
			t.Fatalf("%d pending deliveries, want 2 (email and webhook)", c)
		}
		if c := f.count(`SELECT count(*) FROM deliveries d JOIN river_job j
			ON j.kind = 'deliver' AND (j.args->>'deliveryId')::bigint = d.id AND j.max_attempts = $1`, notify.DeliverMaxAttempts); c != 2 {
			t.Fatalf("%d deliveries have their job, want 2", c)
		}
		keys := f.count(`SELECT count(DISTINCT idempotency_key) FROM deliveries WHERE idempotency_key LIKE 'ntf\_%'`)
		if keys != 2 {
			t.Fatalf("%d distinct idempotency keys, want 2", keys)
		}
		if again, _ := n.CheckWindows(f.ctx, "", t0.Add(time.Minute)); again != 0 || f.count(`SELECT count(*) FROM river_job`) != 2 {
			t.Fatalf("a re-run raised %d and left %d jobs", again, f.count(`SELECT count(*) FROM river_job`))
		}
	})

	t.Run("admins list the deliveries newest first", func(t *testing.T) {
		list, err := f.s.ListDeliveries(f.ctx, integ, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID < list[1].ID || list[0].Kind != "survey_expiring" || list[0].Email != "ann@example.com" {
			t.Fatalf("deliveries %+v", list)
		}
	})
}

func TestWithoutMailerOrRiverNoDeliveryIsEnqueued(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	expiringWorld(f, integrationRow{WebhookURL: "http://127.0.0.1:1/hook"})
	n := notify.New(notify.Options{Store: f.s, Mailer: &fakeMailer{}}) // no River client
	if raised, err := n.CheckWindows(f.ctx, "", t0); err != nil || raised != 1 {
		t.Fatalf("raised %d, %v", raised, err)
	}
	if c := f.count(`SELECT count(*) FROM deliveries`); c != 0 {
		t.Fatalf("%d deliveries with nothing to work them", c)
	}
}

type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(20 * time.Millisecond) }

// webhookServer answers 503 to the first failures requests, then 200.
type webhookServer struct {
	mu       sync.Mutex
	failures int
	requests []*http.Request
	bodies   [][]byte
}

func (s *webhookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	s.bodies = append(s.bodies, body)
	if s.failures > 0 {
		s.failures--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookIsRetriedWithTheSameIdempotencyKeyAndSigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hook := &webhookServer{failures: 2}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	kr := keyring(t)
	integ := expiringWorld(f, integrationRow{})
	keyID, sealed, err := notify.SealWebhookSecret(kr, integ, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetWebhook(f.ctx, integ, store.Webhook{URL: srv.URL + "/hook", SecretSealed: sealed, SecretKeyID: keyID},
		store.AuditEvent{Actor: "test", Action: "webhook.set"}); err != nil {
		t.Fatal(err)
	}
	metrics := &countingMetrics{}
	// A real River client working the jobs, retrying at once instead of
	// River's backoff.
	workers := river.NewWorkers()
	client, err := river.NewClient(riverpgxv5.New(f.s.Pool()), &river.Config{
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		RetryPolicy:       fastRetry{},
		FetchPollInterval: 50 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := notify.New(notify.Options{Store: f.s, Jobs: client, Keyring: kr, Metrics: metrics, WebhookAllowedHosts: []string{"127.0.0.1"}})
	n.Register(workers)
	events, cancelEvents := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	defer cancelEvents()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Stop(context.Background()) })

	if raised, err := n.CheckWindows(ctx, integ, t0); err != nil || raised != 1 {
		t.Fatalf("raised %d, %v", raised, err)
	}
	var attempts int
	for done := false; !done; {
		select {
		case ev := <-events:
			if ev.Job.Kind != "deliver" {
				continue
			}
			if ev.Kind == river.EventKindJobFailed && ev.Job.State != rivertype.JobStateDiscarded {
				continue // an attempt failed, River retries it
			}
			if ev.Kind != river.EventKindJobCompleted {
				t.Fatalf("deliver job ended %s", ev.Kind)
			}
			attempts, done = ev.Job.Attempt, true
		case <-ctx.Done():
			t.Fatal("the deliver job did not complete in time")
		}
	}
	if attempts != 3 {
		t.Fatalf("the job completed on attempt %d, want 3", attempts)
	}

	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.requests) != 3 {
		t.Fatalf("%d webhook requests, want 3", len(hook.requests))
	}
	var d store.Delivery
	list, err := f.s.ListDeliveries(f.ctx, integ, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries %v, %v", list, err)
	}
	d = list[0]
	if d.Status != "sent" || d.Attempts != 3 || d.DeliveredAt == nil || d.Channel != "webhook" {
		t.Fatalf("delivery %+v, want sent after 3 attempts", d)
	}
	for i, r := range hook.requests {
		if got := r.Header.Get("Idempotency-Key"); got != d.IdempotencyKey {
			t.Fatalf("request %d Idempotency-Key %q, want %q", i, got, d.IdempotencyKey)
		}
		if got, want := r.Header.Get(notify.SignatureHeader), notify.Sign([]byte("s3cret"), hook.bodies[i]); got != want {
			t.Fatalf("request %d signature %q, want %q", i, got, want)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: %s %s %s", i, r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
	}
	var p struct {
		ID             int64          `json:"id"`
		Kind           string         `json:"kind"`
		IntegrationID  string         `json:"integrationId"`
		Email          string         `json:"email"`
		SurveyID       string         `json:"surveyId"`
		DistributionID string         `json:"distributionId"`
		Data           map[string]any `json:"data"`
		CreatedAt      time.Time      `json:"createdAt"`
	}
	dec := json.NewDecoder(strings.NewReader(string(hook.bodies[2])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.ID != d.NotificationID || p.Kind != "survey_expiring" || p.IntegrationID != integ || p.Email != "ann@example.com" ||
		p.SurveyID != "SV_1" || p.DistributionID != "EMD_1" || !p.CreatedAt.Equal(t0) ||
		p.Data["respondLink"] != "https://acme.iad1.qualtrics.com/jfe/form/SV_1?Q_DL=abc" {
		t.Fatalf("payload %+v", p)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if metrics.deliveries["webhook:retry"] != 2 || metrics.deliveries["webhook:sent"] != 1 {
		t.Fatalf("metrics %v", metrics.deliveries)
	}

	// A delivery already sent is not sent again, whoever asks.
	if err := n.Deliver(f.ctx, d.ID, false, t0); err != nil || len(hook.requests) != 3 {
		t.Fatalf("re-delivering a sent delivery: %v, %d requests", err, len(hook.requests))
	}
}

func TestWebhookFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	setup := func(t *testing.T, url string, format microapps.WebhookFormat) (*notify.Notifier, int64) {
		t.Helper()
		integ := f.integration(integrationRow{})
		f.survey(integ, surveyRow{ID: "SV_1", Name: "Pulse"})
		f.dist(integ, distRow{ID: "EMD_1", SurveyID: "SV_1"})
		f.recip(integ, recipRow{Dist: "EMD_1", Contact: "CID_1", Survey: "SV_1", Email: "ann@example.com", LinkExpiration: at(20 * h)})
		if err := f.s.SetWebhook(f.ctx, integ, store.Webhook{URL: url, Format: format}, store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		n := notify.New(notify.Options{Store: f.s, Language: "en", WebhookAllowedHosts: []string{"127.0.0.1"}, Jobs: insertOnlyRiver(t, f.s)})
		if raised, err := n.CheckWindows(f.ctx, integ, t0); err != nil || raised != 1 {
			t.Fatalf("raised %d, %v", raised, err)
		}
		list, err := f.s.ListDeliveries(f.ctx, integ, 1)
		if err != nil || len(list) != 1 {
			t.Fatal(list, err)
		}
		return n, list[0].ID
	}
	status := func(t *testing.T, id int64) (string, int, string) {
		t.Helper()
		var s, e string
		var a int
		if err := f.s.Pool().QueryRow(f.ctx, `SELECT status, attempts, last_error FROM deliveries WHERE id = $1`, id).Scan(&s, &a, &e); err != nil {
			t.Fatal(err)
		}
		return s, a, e
	}

	t.Run("a 4xx answer fails the delivery for good and cancels the job", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
		defer srv.Close()
		n, id := setup(t, srv.URL, "json")
		err := n.Deliver(f.ctx, id, false, t0)
		var cancel *rivertype.JobCancelError
		if !errors.As(err, &cancel) {
			t.Fatalf("error %v, want a job cancel", err)
		}
		if s, a, e := status(t, id); s != "failed" || a != 1 || e != "webhook: HTTP 410" {
			t.Fatalf("status %s attempts %d error %q", s, a, e)
		}
	})

	t.Run("the last attempt's failure is final, and the URL's token never reaches last_error", func(t *testing.T) {
		n, id := setup(t, "http://127.0.0.1:1/services/T0/B0/TOKENSECRET", "slack")
		if err := n.Deliver(f.ctx, id, false, t0); err == nil {
			t.Fatal("no error for an unreachable webhook")
		}
		if s, a, e := status(t, id); s != "pending" || a != 1 || e == "" || strings.Contains(e, "TOKENSECRET") {
			t.Fatalf("after attempt 1: status %s attempts %d error %q", s, a, e)
		}
		if err := n.Deliver(f.ctx, id, true, t0); err == nil {
			t.Fatal("no error on the last attempt")
		}
		if s, a, _ := status(t, id); s != "failed" || a != 2 {
			t.Fatalf("after the last attempt: status %s attempts %d", s, a)
		}
	})

	t.Run("a webhook removed after enqueueing is skipped", func(t *testing.T) {
		n, id := setup(t, "http://127.0.0.1:1/hook", "json")
		if _, err := f.s.Pool().Exec(f.ctx, `UPDATE integrations SET webhook_url = '' WHERE id = (SELECT integration_id FROM deliveries WHERE id = $1)`, id); err != nil {
			t.Fatal(err)
		}
		if err := n.Deliver(f.ctx, id, false, t0); err != nil {
			t.Fatal(err)
		}
		if s, a, _ := status(t, id); s != "skipped" || a != 0 {
			t.Fatalf("status %s attempts %d", s, a)
		}
	})
}
