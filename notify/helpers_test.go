package notify_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// t0 is the tests' clock: every time in a fixture is relative to it.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

type integrationRow struct {
	NeverSynced  bool // first_full_sync_at stays NULL
	BrandBaseURL string
	DeepLinks    map[string]string
	WebhookURL   string
	Admins       []string
}

type surveyRow struct {
	ID       string
	Name     string
	Inactive bool
	Deleted  bool
	EndDate  *time.Time
}

type distRow struct {
	ID             string
	SurveyID       string
	Parent         string
	Type           string // default "Invite"
	LinkExpiration *time.Time
	SendDate       *time.Time
	Sent, Finished int
	Deleted        bool
}

type recipRow struct {
	Dist, Contact, Survey string
	Email                 string
	Status                string // default "Success"
	Link                  string
	LinkExpiration        *time.Time
	Deleted               bool
}

// fixture writes rows with plain SQL, as a sync would leave them.
type fixture struct {
	t   testing.TB
	s   *store.Store
	ctx context.Context
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return &fixture{t: t, s: storetest.New(t), ctx: context.Background()}
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.s.Pool().Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%v\n%s", err, sql)
	}
}

func (f *fixture) integration(in integrationRow) string {
	f.t.Helper()
	var first *time.Time
	if !in.NeverSynced {
		first = at(-30 * 24 * time.Hour)
	}
	if in.DeepLinks == nil {
		in.DeepLinks = map[string]string{}
	}
	var id string
	err := f.s.Pool().QueryRow(f.ctx, `INSERT INTO integrations (name, functional_group, base_url, secret_sealed, secret_key_id,
		brand_base_url, deep_links, first_full_sync_at, webhook_url)
		VALUES ('Sales', 'Sales', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', $1, $2, $3, $4) RETURNING id`,
		in.BrandBaseURL, in.DeepLinks, first, in.WebhookURL).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, a := range in.Admins {
		f.exec(`INSERT INTO brand_admins (integration_id, email) VALUES ($1, $2)`, id, a)
	}
	return id
}

func (f *fixture) survey(integ string, s surveyRow) {
	f.t.Helper()
	if s.Name == "" {
		s.Name = "Survey " + s.ID
	}
	var deleted *time.Time
	if s.Deleted {
		deleted = at(-time.Hour)
	}
	f.exec(`INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date, deleted_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		integ, s.ID, s.Name, !s.Inactive, s.EndDate, deleted)
}

func (f *fixture) dist(integ string, d distRow) {
	f.t.Helper()
	if d.Type == "" {
		d.Type = "Invite"
	}
	if d.SendDate == nil {
		d.SendDate = at(-72 * time.Hour)
	}
	var deleted *time.Time
	if d.Deleted {
		deleted = at(-time.Hour)
	}
	f.exec(`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type,
		link_expiration, send_date, sent, finished, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		integ, d.ID, d.SurveyID, d.Parent, d.Type, d.LinkExpiration, d.SendDate, d.Sent, d.Finished, deleted)
}

func (f *fixture) recip(integ string, r recipRow) {
	f.t.Helper()
	if r.Status == "" {
		r.Status = "Success"
	}
	if r.Link == "" {
		r.Link = "https://acme.iad1.qualtrics.com/jfe/form/" + r.Survey + "?Q_DL=" + r.Dist + "_" + r.Contact
	}
	var deleted *time.Time
	if r.Deleted {
		deleted = at(-time.Hour)
	}
	f.exec(`INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, email, status, respond_link,
		link_expiration, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		integ, r.Dist, r.Contact, r.Survey, r.Email, r.Status, r.Link, r.LinkExpiration, deleted)
}

type row struct {
	Kind, DedupeKey, Email, SurveyID, DistributionID, ContactID string
	Data                                                        map[string]any
	CreatedAt, ExpiresAt                                        time.Time
}

func (f *fixture) notifications() []row {
	f.t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT kind, dedupe_key, email, survey_id, distribution_id, contact_id, data,
		created_at, expires_at FROM notifications ORDER BY dedupe_key`)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var data []byte
		if err := r.Scan(&x.Kind, &x.DedupeKey, &x.Email, &x.SurveyID, &x.DistributionID, &x.ContactID, &data,
			&x.CreatedAt, &x.ExpiresAt); err != nil {
			return x, err
		}
		return x, json.Unmarshal(data, &x.Data)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.s.Pool().QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// insertOnlyRiver is a River client that enqueues but never works jobs, so a
// test can look at what was enqueued.
func insertOnlyRiver(t testing.TB, s *store.Store) *river.Client[pgx.Tx] {
	t.Helper()
	c, err := river.NewClient(riverpgxv5.New(s.Pool()), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeMailer records messages and fails the first failures sends.
type fakeMailer struct {
	mu       sync.Mutex
	failures int
	sent     []notify.Message
}

func (m *fakeMailer) Send(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures > 0 {
		m.failures--
		return errTemporary
	}
	m.sent = append(m.sent, msg)
	return nil
}

var errTemporary = temporaryError("421 try again later")

type temporaryError string

func (e temporaryError) Error() string { return string(e) }

// countingMetrics counts what the notifier reports.
type countingMetrics struct {
	mu         sync.Mutex
	raised     map[string]int
	deliveries map[string]int
}

func (m *countingMetrics) NotificationRaised(kind microapps.NotificationKind) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raised == nil {
		m.raised = map[string]int{}
	}
	m.raised[string(kind)]++
}

func (m *countingMetrics) Delivery(channel microapps.Channel, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deliveries == nil {
		m.deliveries = map[string]int{}
	}
	m.deliveries[string(channel)+":"+result]++
}

// onChanges runs the sync hook in its own committed transaction.
func onChanges(t testing.TB, f *fixture, n *notify.Notifier, integ string, changes []store.Change, now time.Time) int {
	t.Helper()
	var raised int
	err := f.s.WithTx(f.ctx, func(tx pgx.Tx) error {
		var err error
		raised, err = n.OnChanges(f.ctx, tx, store.Integration{ID: integ}, changes, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return raised
}

func delivered(dist, contact string) store.Change {
	return store.Change{Kind: "recipient_delivered", DistributionID: dist, ContactID: contact}
}
