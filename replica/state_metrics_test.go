package replica

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Issue 35: integrations by status and the outbox's oldest pending delivery
// per channel, read from the database at scrape time.
func TestStateMetricsReportIntegrationsAndTheOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	exec(`INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, status)
		SELECT gen_random_uuid(), 'I' || g, 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', s
		FROM generate_series(1, 3) g, unnest(ARRAY['active', 'active', 'error']) s`)
	exec(`INSERT INTO notifications (integration_id, kind, dedupe_key, email, survey_id, distribution_id, created_at, expires_at)
		SELECT id, 'new_survey', 'k' || id, 'a@example.com', 'SV_1', 'EMD_1', $1, $1 FROM integrations`, now)
	// Email: one pending for 10 minutes, one sent long ago; webhook: nothing pending.
	exec(`INSERT INTO deliveries (notification_id, integration_id, channel, status, idempotency_key, created_at)
		SELECT id, integration_id, 'email', CASE WHEN row_number() OVER () = 1 THEN 'pending' ELSE 'sent' END, 'e' || id,
			CASE WHEN row_number() OVER () = 1 THEN $1::timestamptz - interval '10 minutes' ELSE $1::timestamptz - interval '3 days' END
		FROM notifications`, now)
	exec(`INSERT INTO deliveries (notification_id, integration_id, channel, status, idempotency_key, created_at)
		SELECT id, integration_id, 'webhook', 'sent', 'w' || id, $1 FROM notifications`, now)

	c := newStateCollector(st, 2*time.Second, zap.NewNop())
	c.now = func() time.Time { return now }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(metricsHandler(reg, zap.NewNop()))
	defer srv.Close()
	fams := scrape(t, srv.URL)
	for status, want := range map[string]float64{"active": 6, "error": 3, "paused": 0} {
		if got, ok := value(fams, "microapps_integrations", map[string]string{"status": status}); !ok || got != want {
			t.Errorf("microapps_integrations{status=%q} = %v (%v), want %v", status, got, ok, want)
		}
	}
	for channel, want := range map[string]float64{"email": 600, "webhook": 0} {
		if got, ok := value(fams, "microapps_outbox_oldest_pending_seconds", map[string]string{"channel": channel}); !ok || got != want {
			t.Errorf("microapps_outbox_oldest_pending_seconds{channel=%q} = %v (%v), want %v", channel, got, ok, want)
		}
	}

	t.Run("a database that fails leaves them out, and the rest is served", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := newMetrics(reg)
		reg.MustRegister(newStateCollector(failingState{}, time.Second, zap.NewNop()))
		m.NotificationRaised("new_survey")
		srv := httptest.NewServer(metricsHandler(reg, zap.NewNop()))
		defer srv.Close()
		fams := scrape(t, srv.URL)
		if _, ok := fams["microapps_integrations"]; ok {
			t.Error("integrations reported although the database failed")
		}
		if got, _ := value(fams, "microapps_notifications_raised_total", map[string]string{"kind": "new_survey"}); got != 1 {
			t.Errorf("notifications_raised_total = %v, want 1", got)
		}
	})
}

type failingState struct{}

func (failingState) OutboxOldestPending(context.Context) (map[microapps.Channel]time.Time, error) {
	return nil, errors.New("down")
}

func (failingState) IntegrationsByStatus(context.Context) (map[microapps.IntegrationStatus]int64, error) {
	return nil, errors.New("down")
}

var _ stateSource = (*store.Store)(nil)
