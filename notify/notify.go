// Package notify raises the notifications of the domain (a new survey, a
// survey about to expire, a distribution's statistics before it expires) and
// delivers them: in the in-app feed (the notifications table), by email and to
// a per-integration webhook.
//
// Rules are set-based SQL: one INSERT … SELECT per rule, keyed by a unique
// dedupe key with ON CONFLICT DO NOTHING, so a re-run, an overlapping job or a
// second replica never raises a notification twice. Deliveries are rows plus
// River jobs inserted in the same transaction as the notification (outbox).
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Defaults of Options.
const (
	DefaultFeedLifetime  = 48 * time.Hour
	DefaultExpiryWindow  = 24 * time.Hour
	DefaultCheckInterval = 5 * time.Minute
)

// Store is what the notifier needs from persistence; *store.Store has it.
type Store interface {
	WithTx(ctx context.Context, fn func(pgx.Tx) error) error
	RaiseNewSurveyTx(ctx context.Context, tx pgx.Tx, o store.RaiseOptions, refs []store.RecipientRef) (store.Raised, error)
	RaiseSurveyExpiringTx(ctx context.Context, tx pgx.Tx, o store.RaiseOptions) (store.Raised, error)
	RaiseSurveyStatisticsTx(ctx context.Context, tx pgx.Tx, o store.RaiseOptions) (store.Raised, error)
	GetDeliveryWork(ctx context.Context, id int64) (store.DeliveryWork, error)
	FinishDelivery(ctx context.Context, id int64, status microapps.DeliveryStatus, lastError string, now time.Time) (bool, error)
	UnsubscribeToken(ctx context.Context, email string, now time.Time) (string, error)
}

// Metrics receives counts; nil means none are kept.
type Metrics interface {
	NotificationRaised(kind microapps.NotificationKind)
	// Delivery is called once per attempt with result "sent", "retry",
	// "failed" or "skipped".
	Delivery(channel microapps.Channel, result string)
}

// Options configure a Notifier. Zero values take the defaults.
type Options struct {
	Store Store
	// Jobs enqueues the deliveries (nil: notifications are raised into the
	// feed and none is delivered).
	Jobs    *river.Client[pgx.Tx]
	Keyring *seal.Keyring // opens webhook secrets
	Log     *zap.Logger
	// PublicURL is the external URL of the service, for the link to the feed
	// in emails.
	PublicURL *url.URL
	// Mailer sends email; nil turns email delivery off.
	Mailer Mailer
	// HTTPClient posts webhooks. The default (10 s timeout) dials through
	// the Qualtrics client's guard (qualtrics.GuardedTransport): public
	// addresses only unless the host is in WebhookAllowedHosts, no proxy from
	// the environment, and no redirect followed.
	HTTPClient *http.Client
	// WebhookAllowedHosts are host names (or IP literals) a webhook may reach
	// even though they resolve to a non-public address: tests, or a relay
	// inside the network. From MICROAPPS_WEBHOOK_ALLOWED_HOSTS.
	WebhookAllowedHosts []string
	// FeedLifetime is how long a notification stays in the feed (48 h).
	FeedLifetime time.Duration
	// ExpiryWindow is how long before an expiry the notice goes out (24 h).
	ExpiryWindow time.Duration
	// CheckInterval is the period of the time-based check job (5 min).
	CheckInterval time.Duration
	// Language of emails and chat messages: "en" (default) or "fr".
	Language string
	Metrics  Metrics
}

// Notifier raises and delivers notifications.
type Notifier struct {
	o Options
}

// New returns a Notifier; Register adds its workers.
func New(o Options) *Notifier {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = WebhookClient(o.WebhookAllowedHosts)
	}
	if o.FeedLifetime <= 0 {
		o.FeedLifetime = DefaultFeedLifetime
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = DefaultExpiryWindow
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.PublicURL == nil {
		o.PublicURL = &url.URL{Scheme: "http", Host: "localhost:8080"}
	}
	if o.Language == "" {
		o.Language = "en"
	}
	return &Notifier{o: o}
}

// WebhookClient is the client webhooks are posted with: the guarded dialer
// the Qualtrics client uses (only public addresses unless a host is allowed,
// no proxy), a 10 s timeout, and redirects answered as they are, never
// followed, so a receiver cannot bounce a delivery to an internal address.
func WebhookClient(allowedHosts []string) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: httpsUnlessAllowed{next: qualtrics.GuardedTransport(allowedHosts), allowed: allowedHosts},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// httpsUnlessAllowed refuses plain http to any host that is not one of
// allowed: a webhook carries names, emails, links and, in Slack and Teams
// URLs, the receiver's token. The admin API and the console refuse such a
// URL already; this also stops one stored before that rule.
type httpsUnlessAllowed struct {
	next    http.RoundTripper
	allowed []string
}

// errPlainHTTP is why a plain http webhook to a host not allowed is not sent.
var errPlainHTTP = errors.New("webhook: plain http is allowed only for MICROAPPS_WEBHOOK_ALLOWED_HOSTS")

func (t httpsUnlessAllowed) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		host := strings.ToLower(strings.TrimSuffix(req.URL.Hostname(), "."))
		listed := false
		for _, a := range t.allowed {
			if host != "" && strings.EqualFold(strings.TrimSpace(a), host) {
				listed = true
				break
			}
		}
		if !listed {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, errPlainHTTP
		}
	}
	return t.next.RoundTrip(req)
}

func (n *Notifier) raiseOptions(integrationID string, now time.Time) store.RaiseOptions {
	// Without a job queue no delivery would ever be worked: enqueue none.
	queue := n.o.Jobs != nil
	return store.RaiseOptions{
		IntegrationID: integrationID,
		Now:           now,
		Window:        n.o.ExpiryWindow,
		FeedLifetime:  n.o.FeedLifetime,
		Email:         queue && n.o.Mailer != nil,
		Webhook:       queue,
	}
}

// OnChanges is the sync's hook: it raises new_survey for the recipients the
// changes say were delivered, and enqueues their deliveries, all in tx. The
// sync never calls it during an integration's first full sync; the rule
// checks first_full_sync_at all the same.
func (n *Notifier) OnChanges(ctx context.Context, tx pgx.Tx, in store.Integration, changes []store.Change, now time.Time) (int, error) {
	var refs []store.RecipientRef
	for _, c := range changes {
		if c.Kind == "recipient_delivered" && c.DistributionID != "" && c.ContactID != "" {
			refs = append(refs, store.RecipientRef{DistributionID: c.DistributionID, ContactID: c.ContactID})
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	r, err := n.o.Store.RaiseNewSurveyTx(ctx, tx, n.raiseOptions(in.ID, now), refs)
	if err != nil {
		return 0, fmt.Errorf("notify: %w", err)
	}
	if err := n.enqueue(ctx, tx, r.DeliveryIDs); err != nil {
		return 0, err
	}
	n.count(microapps.NoticeNewSurvey, r.Count)
	return r.Count, nil
}

// CheckWindows raises the time-based notifications (survey_expiring and
// survey_statistics) due at now for one integration, or for all when
// integrationID is "", in one transaction with their deliveries.
func (n *Notifier) CheckWindows(ctx context.Context, integrationID string, now time.Time) (int, error) {
	var expiring, stats store.Raised
	var err error
	// Raisers insert in key order and so wait on each other rather than
	// deadlock; a deadlock with some other writer is still retried.
	for attempt := 1; ; attempt++ {
		err = n.o.Store.WithTx(ctx, func(tx pgx.Tx) error {
			o := n.raiseOptions(integrationID, now)
			var err error
			if expiring, err = n.o.Store.RaiseSurveyExpiringTx(ctx, tx, o); err != nil {
				return err
			}
			if stats, err = n.o.Store.RaiseSurveyStatisticsTx(ctx, tx, o); err != nil {
				return err
			}
			return n.enqueue(ctx, tx, append(expiring.DeliveryIDs, stats.DeliveryIDs...))
		})
		if err == nil || attempt == 3 || !retryable(err) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("notify: check windows: %w", err)
	}
	n.count(microapps.NoticeSurveyExpiring, expiring.Count)
	n.count(microapps.NoticeSurveyStatistics, stats.Count)
	return expiring.Count + stats.Count, nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func (n *Notifier) count(kind microapps.NotificationKind, c int) {
	if c > 0 {
		n.o.Log.Info("notifications raised", zap.String("kind", string(kind)), zap.Int("count", c))
	}
	if n.o.Metrics == nil {
		return
	}
	for range c {
		n.o.Metrics.NotificationRaised(kind)
	}
}

// enqueue inserts one deliver job per delivery in tx.
func (n *Notifier) enqueue(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rc := n.o.Jobs
	if rc == nil {
		return errors.New("notify: deliveries to enqueue but no job client (Options.Jobs)")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}}
	}
	if _, err := rc.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("notify: enqueue deliveries: %w", err)
	}
	return nil
}
