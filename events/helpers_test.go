package events_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// env is one test's world: a database of its own, the simulator over HTTP,
// the service with its receiver over HTTP, and logs to inspect.
type env struct {
	t       testing.TB
	store   *store.Store
	keyring *seal.Keyring
	svc     *events.Service
	hooks   *httptest.Server
	sim     *qualtricssim.Server
	simURL  string
	logs    *observer.ObservedLogs

	mu      sync.Mutex
	secrets []string // must never appear in a log line
}

type envOptions struct {
	river        bool // start a River client working the queue
	riverWorkers int  // default events.QueueConfig()'s
	maxConns     int32
	options      events.Options
}

func newEnv(t testing.TB, o envOptions, brands ...*qualtricssim.Brand) *env {
	t.Helper()
	var st *store.Store
	if o.maxConns == 0 {
		st = storetest.New(t)
	} else {
		var err error
		st, err = store.Open(context.Background(), storetest.NewMigrated(t), store.Options{MaxConns: o.maxConns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
	}
	kr, err := seal.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	opts := o.options
	opts.Store, opts.Keyring, opts.Log = st, kr, zap.New(core)
	var (
		workers *river.Workers
		rc      *river.Client[pgx.Tx]
	)
	if o.river {
		qc := events.QueueConfig()
		if o.riverWorkers > 0 {
			qc.MaxWorkers = o.riverWorkers
		}
		workers = river.NewWorkers()
		var err error
		rc, err = river.NewClient(riverpgxv5.New(st.Pool()), &river.Config{
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
			Workers:           workers,
			Queues:            map[string]river.QueueConfig{events.Queue: qc},
			FetchPollInterval: 100 * time.Millisecond,
			TestOnly:          true,
		})
		if err != nil {
			t.Fatal(err)
		}
		opts.Jobs = rc
	}
	svc, err := events.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, keyring: kr, svc: svc, logs: logs}
	e.hooks = httptest.NewServer(svc.Receiver())
	t.Cleanup(e.hooks.Close)
	if len(brands) > 0 {
		e.sim = qualtricssim.New(qualtricssim.Options{Brands: brands, EventTimeout: 10 * time.Second})
		simSrv := httptest.NewServer(e.sim)
		t.Cleanup(simSrv.Close)
		e.simURL = simSrv.URL + "/API/v3/"
	}
	if o.river {
		svc.Register(workers)
		if err := rc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = rc.Stop(ctx)
		})
	}
	t.Cleanup(e.checkLogs)
	return e
}

// checkLogs fails the test when a log line holds a posted MSG or a shared key.
func (e *env) checkLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, entry := range e.logs.All() {
		// %v keeps values unescaped, so a JSON body shows as it was posted.
		line := fmt.Sprintf("%s %v", entry.Message, entry.ContextMap())
		for _, s := range e.secrets {
			if s != "" && strings.Contains(line, s) {
				e.t.Errorf("a log line holds a secret or a body: %q", line)
			}
		}
	}
}

func (e *env) secret(s string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, s)
	e.mu.Unlock()
}

// simBrand is a brand with one Brand Admin, one active survey and one
// distribution of three recipients who received the email.
func simBrand(id, surveyID, distID string, now time.Time) *qualtricssim.Brand {
	b := &qualtricssim.Brand{
		ID: id, OrganizationID: id, Datacenter: "iad1", BaseURL: "https://" + id + ".qualtrics.com", LinkHost: id + ".iad1.qualtrics.com",
		Users: []qualtricssim.User{{ID: "UR_" + id, UserName: "admin@" + id, Email: "admin@" + id + ".example",
			AccountType: qualtricssim.AccountBrandAdmin, Tokens: []string{"tok-" + id}}},
		Surveys: []qualtricssim.Survey{{ID: surveyID, Name: "Survey " + surveyID, OwnerID: "UR_" + id, IsActive: true,
			CreationDate: now.Add(-48 * time.Hour), LastModifiedDate: now.Add(-48 * time.Hour)}},
	}
	d := qualtricssim.Distribution{ID: distID, SurveyID: surveyID, OwnerID: "UR_" + id, RequestType: qualtricssim.RequestInvite,
		RequestStatus: "Done", SendDate: now.Add(-24 * time.Hour), CreatedDate: now.Add(-24 * time.Hour), ModifiedDate: now.Add(-24 * time.Hour),
		LinkExpiration: now.Add(7 * 24 * time.Hour)}
	for i := 1; i <= 5; i++ {
		d.Recipients = append(d.Recipients, qualtricssim.Recipient{
			ContactID: fmt.Sprintf("CID_%s%d", id, i), ContactLookupID: fmt.Sprintf("MLRP_%s%d", id, i),
			Email: fmt.Sprintf("user%d@%s.example", i, id), Status: qualtricssim.StatusSuccess,
			Link: "https://" + id + ".iad1.qualtrics.com/jfe/form/" + surveyID, SentAt: now.Add(-24 * time.Hour),
		})
	}
	b.Distributions = []qualtricssim.Distribution{d}
	return b
}

// integration is a stored integration whose rows mirror a simBrand.
type integration struct {
	store.Integration
	token string
}

// addIntegration stores an integration for brand with its survey,
// distribution and recipients, as a sync would have.
func (e *env) addIntegration(b *qualtricssim.Brand, eventsEnabled bool) integration {
	e.t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	token := b.Users[0].Tokens[0]
	keyID, sealed, err := e.keyring.Seal([]byte(token), []byte(id))
	if err != nil {
		e.t.Fatal(err)
	}
	baseURL := e.simURL
	if baseURL == "" {
		baseURL = "https://iad1.qualtrics.com/API/v3/"
	}
	err = e.store.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, events_enabled, brand_id, account_type)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'UT_BRANDADMIN')`, id, "Integration "+b.ID, baseURL, sealed, keyID, eventsEnabled, b.ID); err != nil {
			return err
		}
		for _, sv := range b.Surveys {
			if _, err := tx.Exec(ctx, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, $2, $3, $4)`,
				id, sv.ID, sv.Name, sv.IsActive); err != nil {
				return err
			}
		}
		for _, d := range b.Distributions {
			st := qualtricssim.ComputeStats(d.Recipients)
			if _, err := tx.Exec(ctx, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, link_expiration,
					sent, opened, started, finished) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				id, d.ID, d.SurveyID, d.RequestType, d.LinkExpiration, st.Sent, st.Opened, st.Started, st.Finished); err != nil {
				return err
			}
			for _, r := range d.Recipients {
				if err := insertRecipient(ctx, tx, id, d.ID, d.SurveyID, r.ContactID, r.ContactLookupID, r.Email, r.Status); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	in, err := e.store.GetIntegration(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return integration{Integration: in, token: token}
}

func insertRecipient(ctx context.Context, tx pgx.Tx, integrationID, distID, surveyID, contactID, lookupID, email, status string) error {
	_, err := tx.Exec(ctx, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, contact_lookup_id, email, status, sent_at)
		VALUES ($1, $2, $3, $4, $5, lower(btrim($6)), $7, now())`, integrationID, distID, contactID, surveyID, lookupID, email, status)
	return err
}

func (e *env) client(in integration) *qualtrics.Client {
	e.t.Helper()
	c, err := qualtrics.New(qualtrics.Config{BaseURL: e.simURL, AllowedHosts: []string{"127.0.0.1"},
		Auth: qualtrics.Auth{Token: in.token}, MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) publicURL() *url.URL {
	u, err := url.Parse(e.hooks.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// sharedKey gives an integration a shared key as SyncSubscriptions would,
// without Qualtrics, and returns it.
func (e *env) sharedKey(in integration) string {
	e.t.Helper()
	key := "key-" + in.ID
	keyID, sealed, err := e.keyring.Seal([]byte(key), []byte(in.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.SetEventsKeyIfMissing(context.Background(), in.ID, keyID, sealed); err != nil {
		e.t.Fatal(err)
	}
	e.secret(key)
	return key
}

type response struct {
	status int
	header http.Header
	body   string
}

// post sends one callback signed with key (or with sig when it is not empty).
func (e *env) post(integrationID, topic string, msg any, key, sig string) response {
	e.t.Helper()
	raw, ok := msg.(string)
	if !ok {
		b, err := json.Marshal(msg)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = string(b)
	}
	e.secret(raw)
	if sig == "" {
		sig = qualtricssim.SignEvent(key, []byte(raw))
	}
	form := url.Values{"Topic": {topic}, "MSG": {raw}, "HMAC": {sig}}
	return e.postRaw(integrationID, "application/x-www-form-urlencoded", form.Encode())
}

func (e *env) postRaw(integrationID, contentType, body string) response {
	e.t.Helper()
	resp, err := http.Post(e.hooks.URL+"/hooks/qualtrics/"+integrationID, contentType, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// msg builds a survey-engine MSG as Qualtrics sends it.
func msg(surveyID, responseID, contactID, distID, brandID, status string, at time.Time) map[string]string {
	return map[string]string{"SurveyID": surveyID, "ResponseID": responseID, "RecipientID": contactID,
		"DistributionID": distID, "CompletedDate": at.UTC().Format("2006-01-02T15:04:05Z"), "BrandID": brandID, "Status": status}
}

type recipientRow struct {
	Status      string
	ResponseID  string
	StartedAt   *time.Time
	CompletedAt *time.Time
}

func (e *env) recipient(integrationID, distID, contactID string) recipientRow {
	e.t.Helper()
	var r recipientRow
	err := e.store.Pool().QueryRow(context.Background(), `SELECT status, response_id, response_started_at, response_completed_at
		FROM recipients WHERE integration_id = $1 AND distribution_id = $2 AND contact_id = $3`, integrationID, distID, contactID).
		Scan(&r.Status, &r.ResponseID, &r.StartedAt, &r.CompletedAt)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// counters returns a distribution's started and finished figures.
func (e *env) counters(integrationID, distID string) (started, finished int) {
	e.t.Helper()
	err := e.store.Pool().QueryRow(context.Background(), `SELECT started, finished FROM distributions
		WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, distID).Scan(&started, &finished)
	if err != nil {
		e.t.Fatal(err)
	}
	return started, finished
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func qualtricsSub(publicationURL string) qualtrics.NewEventSubscription {
	return qualtrics.NewEventSubscription{PublicationURL: publicationURL, Topics: "controlpanel.activateSurvey", SharedKey: "stray"}
}
