package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/internal/words"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// permanentError is a failure that retrying cannot fix (a 4xx answer, a
// secret that no key opens): the delivery fails at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Deliver works one delivery: sends it unless it was already sent or
// skipped, and records the outcome. final says this is the last attempt River
// will make, so a failure is recorded as "failed" rather than "pending". An
// error return makes River retry with its backoff.
func (n *Notifier) Deliver(ctx context.Context, deliveryID int64, final bool, now time.Time) error {
	w, err := n.o.Store.GetDeliveryWork(ctx, deliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the integration and its deliveries are gone
	}
	if err != nil {
		return err
	}
	d := w.Delivery
	if d.Status == microapps.DeliverySent || d.Status == microapps.DeliverySkipped {
		return nil
	}
	log := n.o.Log.With(zap.Int64("delivery", d.ID), zap.String("channel", string(d.Channel)),
		zap.String("integrationId", d.IntegrationID), zap.String("kind", string(w.Notification.Kind)))

	var sendErr error
	switch {
	case d.Channel == microapps.ChannelEmail && n.o.Mailer == nil:
		return n.finish(ctx, d, microapps.DeliverySkipped, "email is not configured", now, nil)
	case d.Channel == microapps.ChannelWebhook && w.Webhook.URL == "":
		return n.finish(ctx, d, microapps.DeliverySkipped, "the integration has no webhook", now, nil)
	case d.Channel == microapps.ChannelEmail && w.Unsubscribed:
		// Qualtrics' opt-out is the person's choice: the feed still shows
		// the item, no email goes out.
		return n.finish(ctx, d, microapps.DeliverySkipped, "the recipient unsubscribed in Qualtrics", now, nil)
	case d.Channel == microapps.ChannelEmail && w.User.EmailOff:
		return n.finish(ctx, d, microapps.DeliverySkipped, "the user turned email notifications off", now, nil)
	case d.Channel == microapps.ChannelEmail:
		var msg Message
		if msg, sendErr = n.emailMessage(ctx, w, now); sendErr == nil {
			sendErr = n.o.Mailer.Send(ctx, msg)
		}
	case d.Channel == microapps.ChannelWebhook:
		sendErr = n.postWebhook(ctx, w)
	default:
		sendErr = &permanentError{fmt.Errorf("unknown channel %q", d.Channel)}
	}
	if sendErr == nil {
		log.Info("notification delivered")
		return n.finish(ctx, d, microapps.DeliverySent, "", now, nil)
	}
	var perm *permanentError
	switch {
	case errors.As(sendErr, &perm):
		log.Warn("notification delivery failed for good", zap.Error(sendErr))
		return n.finish(ctx, d, microapps.DeliveryFailed, sendErr.Error(), now, river.JobCancel(sendErr))
	case final:
		log.Warn("notification delivery failed, no attempts left", zap.Error(sendErr))
		return n.finish(ctx, d, microapps.DeliveryFailed, sendErr.Error(), now, sendErr)
	default:
		log.Info("notification delivery failed, will retry", zap.Error(sendErr))
		return n.finish(ctx, d, microapps.DeliveryPending, sendErr.Error(), now, sendErr)
	}
}

// finish records the outcome and returns ret, the error River should see.
func (n *Notifier) finish(ctx context.Context, d store.Delivery, status microapps.DeliveryStatus, lastError string, now time.Time, ret error) error {
	if _, err := n.o.Store.FinishDelivery(ctx, d.ID, status, truncate(lastError, 1000), now); err != nil {
		return err
	}
	if n.o.Metrics != nil {
		result := string(status)
		if status == microapps.DeliveryPending {
			result = "retry"
		}
		n.o.Metrics.Delivery(d.Channel, result)
	}
	return ret
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// WebhookPayload is the JSON body of a "json" format webhook.
type WebhookPayload struct {
	ID             int64                      `json:"id"`
	Kind           microapps.NotificationKind `json:"kind"`
	IntegrationID  string                     `json:"integrationId"`
	Email          string                     `json:"email"`
	SurveyID       string                     `json:"surveyId"`
	DistributionID string                     `json:"distributionId"`
	Data           json.RawMessage            `json:"data"`
	CreatedAt      time.Time                  `json:"createdAt"`
}

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body under
// the integration's webhook secret.
const SignatureHeader = "X-Microapps-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SealWebhookSecret seals a webhook secret for store.Webhook, bound to its
// integration and kept apart from the integration's other secrets
// (seal.WebhookSecret).
func SealWebhookSecret(kr *seal.Keyring, integrationID, secret string) (keyID string, sealed []byte, err error) {
	return seal.SealSecret(kr, seal.WebhookSecret, integrationID, []byte(secret))
}

func (n *Notifier) webhookBody(w store.DeliveryWork) ([]byte, error) {
	nt := w.Notification
	switch w.Webhook.Format {
	case microapps.WebhookSlack, microapps.WebhookTeams:
		t, err := n.compose(w, n.readerOf(w))
		if err != nil {
			return nil, err
		}
		return t.chatBody(w.Webhook.Format)
	default:
		data := nt.Data
		if nt.Kind == microapps.NoticeSurveyStatistics {
			data = words.WithReviewLink(data, links.ReviewDistributionsURL(
				links.Integration{BaseURL: w.BaseURL, BrandBaseURL: w.BrandBaseURL, DeepLinks: w.DeepLinks}, nt.SurveyID, nt.DistributionID))
		}
		return json.Marshal(WebhookPayload{ID: nt.ID, Kind: nt.Kind, IntegrationID: nt.IntegrationID, Email: nt.Email,
			SurveyID: nt.SurveyID, DistributionID: nt.DistributionID, Data: data, CreatedAt: nt.CreatedAt.UTC()})
	}
}

// errWebhookUnreachable is all a delivery records of a failure before an
// answer: which of refused, timed out, unresolvable or forbidden is logged.
var errWebhookUnreachable = errors.New("webhook: the destination is unreachable")

func (n *Notifier) postWebhook(ctx context.Context, w store.DeliveryWork) error {
	body, err := n.webhookBody(w)
	if err != nil {
		return &permanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{errors.New("webhook URL is not valid")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "microapps-webhook/1")
	req.Header.Set("Idempotency-Key", w.Delivery.IdempotencyKey)
	if len(w.Webhook.SecretSealed) > 0 {
		if n.o.Keyring == nil {
			return &permanentError{errors.New("webhook secret set but no key ring to open it")}
		}
		secret, _, err := seal.OpenSecret(n.o.Keyring, seal.WebhookSecret, w.Delivery.IntegrationID, w.Webhook.SecretKeyID, w.Webhook.SecretSealed)
		if err != nil {
			return &permanentError{fmt.Errorf("webhook secret: %w", err)}
		}
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	resp, err := n.o.HTTPClient.Do(req)
	if err != nil {
		// The URL may hold a token (Slack and Teams put one in the path):
		// never let it reach last_error or the log.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		// The cause goes to the operator's log only. last_error is shown to
		// API callers, and a refused connection, a timeout or a forbidden
		// address told apart there would make the webhook a port scanner.
		n.o.Log.Info("webhook unreachable", zap.Int64("delivery", w.Delivery.ID),
			zap.String("integrationId", w.Delivery.IntegrationID), zap.Error(err))
		return errWebhookUnreachable
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("webhook: HTTP %d", resp.StatusCode)
	default:
		return &permanentError{fmt.Errorf("webhook: HTTP %d", resp.StatusCode)}
	}
}

func (n *Notifier) feedURL() string {
	return n.o.PublicURL.JoinPath("notifications").String()
}

// SendTestWebhook posts a sample survey_statistics notification to wh now,
// signed and formatted as real deliveries are, so a platform admin can check
// the receiver. Nothing is stored; the error says why the receiver refused it
// (never the URL, which may hold a token).
func (n *Notifier) SendTestWebhook(ctx context.Context, integrationID string, wh store.Webhook) error {
	now := time.Now().UTC()
	data, _ := json.Marshal(map[string]any{"surveyName": "Test delivery", "functionalGroup": "microapps",
		"sent": 100, "finished": 42, "expiresAt": now.Add(24 * time.Hour).Format(time.RFC3339), "test": true})
	w := store.DeliveryWork{
		Delivery:     store.Delivery{IntegrationID: integrationID, Channel: microapps.ChannelWebhook, IdempotencyKey: "test-" + now.Format("20060102T150405.000000000")},
		Notification: store.Notification{IntegrationID: integrationID, Kind: microapps.NoticeSurveyStatistics, Data: data, CreatedAt: now},
		Webhook:      wh,
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return n.postWebhook(ctx, w)
}
