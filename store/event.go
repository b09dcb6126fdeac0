package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventsKey is what the event receiver needs to know about an integration:
// whether it opted in and the sealed shared key that signs its callbacks.
type EventsKey struct {
	IntegrationID string
	Enabled       bool
	BrandID       string
	KeyID         string
	Sealed        []byte // nil until the first subscription sync creates the key
}

// GetEventsKey returns the event settings of one integration.
func (s *Store) GetEventsKey(ctx context.Context, integrationID string) (EventsKey, error) {
	if !ValidUUID(integrationID) {
		return EventsKey{}, fmt.Errorf("store: get events key: %w", ErrNotFound)
	}
	k := EventsKey{IntegrationID: integrationID}
	err := s.pool.QueryRow(ctx, `SELECT events_enabled, brand_id, events_key_id, events_key_sealed
		FROM integrations WHERE id = $1 AND deleted_at IS NULL`, integrationID).Scan(&k.Enabled, &k.BrandID, &k.KeyID, &k.Sealed)
	return k, mapErr("get events key", err)
}

// EventsReceivingIntegrationIDs lists the integrations that accept event
// callbacks: events enabled and a shared key stored.
func (s *Store) EventsReceivingIntegrationIDs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM integrations WHERE events_enabled AND events_key_sealed IS NOT NULL`)
	if err != nil {
		return nil, mapErr("events receiving integrations", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapErr("events receiving integrations", err)
}

// SetEventsKeyIfMissing stores a sealed shared key unless the integration
// already has one, and returns the key that is stored: two replicas creating a
// key at once agree on the first.
func (s *Store) SetEventsKeyIfMissing(ctx context.Context, integrationID, keyID string, sealed []byte) (EventsKey, error) {
	if !ValidUUID(integrationID) {
		return EventsKey{}, fmt.Errorf("store: set events key: %w", ErrNotFound)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE integrations SET events_key_id = $2, events_key_sealed = $3, updated_at = now()
		WHERE id = $1 AND events_key_sealed IS NULL`, integrationID, keyID, sealed); err != nil {
		return EventsKey{}, mapErr("set events key", err)
	}
	return s.GetEventsKey(ctx, integrationID)
}

// ResealEventKeys re-seals every integration's event key, like ResealSecrets
// does for credentials. It returns how many keys were rewritten.
func (s *Store) ResealEventKeys(ctx context.Context, reseal func(integrationID, keyID string, sealed []byte) (string, []byte, error)) (int, error) {
	return s.resealColumn(ctx, "reseal event keys", "events_key_id", "events_key_sealed", reseal)
}

// EventSubscription is a Qualtrics event subscription the service registered
// for an integration. SurveyID is "" for the brand-level one (controlpanel topics).
type EventSubscription struct {
	IntegrationID  string
	SurveyID       string
	SubscriptionID string
	Topics         string
	PublicationURL string
	CreatedAt      time.Time
}

// ListEventSubscriptions returns an integration's registered subscriptions.
func (s *Store) ListEventSubscriptions(ctx context.Context, integrationID string) ([]EventSubscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT integration_id, survey_id, subscription_id, topics, publication_url, created_at
		FROM event_subscriptions WHERE integration_id = $1 ORDER BY survey_id`, integrationID)
	if err != nil {
		return nil, mapErr("list event subscriptions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventSubscription, error) {
		var e EventSubscription
		err := r.Scan(&e.IntegrationID, &e.SurveyID, &e.SubscriptionID, &e.Topics, &e.PublicationURL, &e.CreatedAt)
		return e, err
	})
	return out, mapErr("list event subscriptions", err)
}

// PutEventSubscription records a registered subscription, replacing the one
// of the same survey.
func (s *Store) PutEventSubscription(ctx context.Context, e EventSubscription) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO event_subscriptions (integration_id, survey_id, subscription_id, topics, publication_url, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (integration_id, survey_id) DO UPDATE SET subscription_id = excluded.subscription_id,
			topics = excluded.topics, publication_url = excluded.publication_url, created_at = excluded.created_at`,
		e.IntegrationID, e.SurveyID, e.SubscriptionID, e.Topics, e.PublicationURL, e.CreatedAt)
	return mapErr("put event subscription", err)
}

// DeleteEventSubscription forgets a subscription; forgetting one that is not
// there is not an error.
func (s *Store) DeleteEventSubscription(ctx context.Context, integrationID, surveyID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM event_subscriptions WHERE integration_id = $1 AND survey_id = $2`, integrationID, surveyID)
	return mapErr("delete event subscription", err)
}

// ActiveSurveyIDs lists the integration's active, not deleted surveys: those
// that get a subscription.
func (s *Store) ActiveSurveyIDs(ctx context.Context, integrationID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT qualtrics_id FROM surveys
		WHERE integration_id = $1 AND is_active AND deleted_at IS NULL ORDER BY qualtrics_id`, integrationID)
	if err != nil {
		return nil, mapErr("active survey ids", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapErr("active survey ids", err)
}

// QualtricsEvent is a Qualtrics event callback as received.
type QualtricsEvent struct {
	ID             int64
	IntegrationID  string
	Topic          string
	SurveyID       string
	ResponseID     string // or a stand-in starting with "none:" (see the migration)
	RecipientID    string
	DistributionID string
	Status         string
	OccurredAt     *time.Time
	ReceivedAt     time.Time
	AppliedAt      *time.Time
	Attempts       int
	// MsgSHA256 is the SHA-256 of the signed MSG: an integration accepts a
	// MSG once, whatever the topic it comes with.
	MsgSHA256 []byte
}

// InsertEventTx stores ev unless an event with the same (integration,
// response id, topic) or the same (integration, MSG digest) exists; inserted
// is false for such a duplicate.
func (s *Store) InsertEventTx(ctx context.Context, tx pgx.Tx, ev QualtricsEvent) (id int64, inserted bool, err error) {
	err = tx.QueryRow(ctx, `INSERT INTO qualtrics_events (integration_id, topic, survey_id, response_id, recipient_id,
			distribution_id, status, occurred_at, received_at, msg_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		ev.IntegrationID, ev.Topic, ev.SurveyID, ev.ResponseID, ev.RecipientID, ev.DistributionID, ev.Status,
		ev.OccurredAt, ev.ReceivedAt, ev.MsgSHA256).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, mapErr("insert event", err)
	}
	return id, true, nil
}

// EventEffect is what an event changes, as the caller reads its topic.
type EventEffect struct {
	// RecipientStatus moves the recipient of the event's distribution to this
	// history status, never backwards; "" leaves recipients alone.
	RecipientStatus string
	// SurveyActive sets the survey's is_active; nil leaves it alone.
	SurveyActive *bool
}

// EventOutcome is the result of ApplyEvent.
type EventOutcome int

const (
	// EventApplied: the event was applied now (possibly changing nothing, e.g.
	// a status that would move backwards).
	EventApplied EventOutcome = iota + 1
	// EventPending: its survey or recipient is not (yet) known; it stays for
	// ReapplyPending.
	EventPending
	// EventAlreadyApplied: an earlier attempt applied it.
	EventAlreadyApplied
	// EventMissing: the event row is gone (dropped, or the integration deleted).
	EventMissing
)

// Recipient history statuses the apply ranks.
const (
	statusSurveyStarted           = "SurveyStarted"
	statusSurveyPartiallyFinished = "SurveyPartiallyFinished"
	statusSurveyFinished          = "SurveyFinished"
	statusSurveyScreenedOut       = "SurveyScreenedOut"
	statusSessionExpired          = "SessionExpired"
)

// progressRank orders history statuses along a response's progress so an
// event never moves a recipient backwards: whatever the email did (0), a
// session started (1), a partial or expired response (2), a finished or
// screened-out one (3).
func progressRank(status string) int {
	switch status {
	case statusSurveyStarted:
		return 1
	case statusSurveyPartiallyFinished, statusSessionExpired:
		return 2
	case statusSurveyFinished, statusSurveyScreenedOut:
		return 3
	}
	return 0
}

// ApplyEvent applies one stored event in a transaction: effect says what the
// event's topic means. The event row is locked, so two workers applying the
// same event apply it once; the recipient row is locked, so concurrent events
// of one recipient move it forward in any order. The distribution's figures
// are not touched: they come from Qualtrics' listing only. An event whose
// survey is not one of the integration's, or whose recipient is not known,
// changes nothing and stays pending. id comes from the service's own job or
// pending list, never from a request; every write is scoped by the event
// row's integration.
func (s *Store) ApplyEvent(ctx context.Context, id int64, now time.Time, effect func(QualtricsEvent) EventEffect) (EventOutcome, error) {
	var outcome EventOutcome
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		// An apply need not wait for its commit to reach the disk: if a crash
		// loses it, it loses applied_at with it and the event is applied again
		// by ReapplyPending. This halves what an apply costs.
		var ev QualtricsEvent
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		b.Queue(`SELECT id, integration_id, topic, survey_id, response_id, recipient_id, distribution_id,
				status, occurred_at, received_at, applied_at, attempts
			FROM qualtrics_events WHERE id = $1 FOR UPDATE`, id).QueryRow(func(row pgx.Row) error {
			return row.Scan(&ev.ID, &ev.IntegrationID, &ev.Topic, &ev.SurveyID, &ev.ResponseID, &ev.RecipientID,
				&ev.DistributionID, &ev.Status, &ev.OccurredAt, &ev.ReceivedAt, &ev.AppliedAt, &ev.Attempts)
		})
		err := tx.SendBatch(ctx, b).Close()
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = EventMissing
			return nil
		}
		if err != nil {
			return err
		}
		if ev.AppliedAt != nil {
			outcome = EventAlreadyApplied
			return nil
		}
		writes := &pgx.Batch{}
		if outcome, err = applyEventTx(ctx, tx, writes, ev, effect(ev), now); err != nil {
			return err
		}
		var applied *time.Time
		if outcome == EventApplied {
			applied = &now
		}
		writes.Queue(`UPDATE qualtrics_events SET attempts = attempts + 1, applied_at = $2 WHERE id = $1`, id, applied)
		return tx.SendBatch(ctx, writes).Close()
	})
	return outcome, mapErr("apply event", err)
}

// applyEventTx reads what the event needs under row locks and queues its
// writes on writes, to be sent in one round trip.
func applyEventTx(ctx context.Context, tx pgx.Tx, writes *pgx.Batch, ev QualtricsEvent, eff EventEffect, now time.Time) (EventOutcome, error) {
	if eff.SurveyActive != nil {
		var known bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM surveys WHERE integration_id = $1 AND qualtrics_id = $2)`,
			ev.IntegrationID, ev.SurveyID).Scan(&known); err != nil {
			return 0, err
		}
		if !known {
			return EventPending, nil
		}
		writes.Queue(`UPDATE surveys SET is_active = $3, updated_at = $4
			WHERE integration_id = $1 AND qualtrics_id = $2 AND is_active IS DISTINCT FROM $3`,
			ev.IntegrationID, ev.SurveyID, *eff.SurveyActive, now)
	}
	if eff.RecipientStatus == "" {
		return EventApplied, nil
	}
	// The survey must be one of the integration's, and the recipient known.
	// RecipientID is the contact id (CID_…); older payloads were seen with the
	// lookup id, so both are tried, an exact contact id first.
	var contactID, old string
	err := tx.QueryRow(ctx, `SELECT r.contact_id, r.status FROM recipients r
		WHERE r.integration_id = $1 AND r.distribution_id = $2 AND r.survey_id = $3
			AND (r.contact_id = $4 OR r.contact_lookup_id = $4)
			AND EXISTS (SELECT 1 FROM surveys s WHERE s.integration_id = $1 AND s.qualtrics_id = $3)
		ORDER BY r.contact_id = $4 DESC LIMIT 1 FOR UPDATE OF r`,
		ev.IntegrationID, ev.DistributionID, ev.SurveyID, ev.RecipientID).Scan(&contactID, &old)
	if errors.Is(err, pgx.ErrNoRows) {
		return EventPending, nil
	}
	if err != nil {
		return 0, err
	}
	next := eff.RecipientStatus
	if progressRank(next) <= progressRank(old) {
		return EventApplied, nil // never backwards: a finished response stays finished
	}
	at := now
	if ev.OccurredAt != nil {
		at = *ev.OccurredAt
	}
	responseID := ev.ResponseID
	if len(responseID) >= 5 && responseID[:5] == "none:" {
		responseID = ""
	}
	// A recipient the event brings to a reached status was never announced
	// (the sync stored it unreached): the next merge of it reports it as
	// delivered, though it then reads the status already stored.
	writes.Queue(`UPDATE recipients SET status = $4,
			response_started_at = coalesce(response_started_at, $5),
			response_completed_at = CASE WHEN $6 THEN coalesce(response_completed_at, $5) ELSE response_completed_at END,
			response_id = CASE WHEN $7 <> '' THEN $7 ELSE response_id END,
			unannounced = unannounced OR $9,
			updated_at = $8
		WHERE integration_id = $1 AND distribution_id = $2 AND contact_id = $3`,
		ev.IntegrationID, ev.DistributionID, contactID, next, at, progressRank(next) == 3, responseID, now,
		!Reached(old) && Reached(next))
	// The distribution's figures are left alone: they are Qualtrics' own, and
	// its listing lags behind events, so a counter bumped here would be
	// contradicted (and lowered again) by the next listing.
	return EventApplied, nil
}

// PendingEventIDs lists an integration's events not applied yet, oldest
// first, after afterID, at most limit of them.
func (s *Store) PendingEventIDs(ctx context.Context, integrationID string, afterID int64, limit int) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM qualtrics_events
		WHERE integration_id = $1 AND applied_at IS NULL AND id > $2 ORDER BY id LIMIT $3`, integrationID, afterID, limit)
	if err != nil {
		return nil, mapErr("pending events", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, mapErr("pending events", err)
}

// DropStaleEvents deletes an integration's pending events received before
// pendingBefore and its applied events applied before appliedBefore. It
// returns how many pending events were dropped.
func (s *Store) DropStaleEvents(ctx context.Context, integrationID string, pendingBefore, appliedBefore time.Time) (dropped int64, err error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM qualtrics_events
		WHERE integration_id = $1 AND applied_at IS NULL AND received_at < $2`, integrationID, pendingBefore)
	if err != nil {
		return 0, mapErr("drop stale events", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM qualtrics_events
		WHERE integration_id = $1 AND applied_at IS NOT NULL AND applied_at < $2`, integrationID, appliedBefore); err != nil {
		return 0, mapErr("drop stale events", err)
	}
	return tag.RowsAffected(), nil
}
