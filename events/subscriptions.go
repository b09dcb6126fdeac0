package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// brandTopics is the brand-level subscription's topics (survey_id ”).
const brandTopics = topicActivate + "," + topicDeactivate

// surveyTopics is the subscription of one active survey.
func surveyTopics(surveyID string) string {
	return topicCompleted + surveyID + "," + topicStarted + surveyID + "," + topicPartial + surveyID
}

// PublicationURL is where Qualtrics posts an integration's events.
func PublicationURL(publicURL *url.URL, integrationID string) string {
	return publicURL.JoinPath("hooks", "qualtrics", integrationID).String()
}

// SyncSubscriptions keeps the integration's subscriptions in step with its
// active surveys: one per active survey and one brand-level subscription for
// survey (de)activation, all pointing to {publicURL}/hooks/qualtrics/{id} and
// signed with the integration's shared key, created (and sealed) here on first
// use. Subscriptions of surveys no longer active are removed, as are
// subscriptions to this integration's URL the service does not track (a create
// whose answer was lost). When events are disabled, it removes them all.
// Registering subscriptions is the only write the service makes to Qualtrics,
// with the integration's own client.
func (s *Service) SyncSubscriptions(ctx context.Context, in store.Integration, client *qualtrics.Client, publicURL *url.URL) error {
	if !in.EventsEnabled {
		return s.RemoveAll(ctx, in, client)
	}
	if publicURL == nil || publicURL.Scheme == "" || publicURL.Host == "" {
		return errors.New("events: sync subscriptions: no public URL")
	}
	pub := PublicationURL(publicURL, in.ID)
	key, err := s.sharedKey(ctx, in.ID)
	if err != nil {
		return err
	}
	surveys, err := s.store.ActiveSurveyIDs(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("events: sync subscriptions: %w", err)
	}
	want := map[string]string{"": brandTopics}
	for _, sv := range surveys {
		want[sv] = surveyTopics(sv)
	}
	have, err := s.store.ListEventSubscriptions(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("events: sync subscriptions: %w", err)
	}
	remote, err := remoteSubscriptions(ctx, client, in.ID)
	if err != nil {
		return err
	}

	var errs []error
	tracked := map[string]bool{}
	for _, h := range have {
		tracked[h.SubscriptionID] = true
		topics, wanted := want[h.SurveyID]
		_, alive := remote[h.SubscriptionID]
		if wanted && alive && topics == h.Topics && h.PublicationURL == pub {
			delete(want, h.SurveyID) // in step
			continue
		}
		if err := s.removeOne(ctx, client, h, alive); err != nil {
			errs = append(errs, err)
			delete(want, h.SurveyID) // retried next sync, never doubled
		}
	}
	for id := range remote {
		if !tracked[id] {
			if err := client.DeleteEventSubscription(ctx, id); err != nil && !qualtrics.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("events: delete untracked subscription %s: %w", id, err))
			}
		}
	}
	ids := make([]string, 0, len(want))
	for sv := range want {
		ids = append(ids, sv)
	}
	slices.Sort(ids)
	created := 0
	for _, sv := range ids {
		subID, err := client.CreateEventSubscription(ctx, qualtrics.NewEventSubscription{
			PublicationURL: pub, Topics: want[sv], SharedKey: key})
		if err != nil {
			errs = append(errs, fmt.Errorf("events: create subscription for %q: %w", sv, err))
			if ctx.Err() != nil || qualtrics.IsUnauthorized(err) {
				break
			}
			continue
		}
		created++
		if err := s.store.PutEventSubscription(ctx, store.EventSubscription{IntegrationID: in.ID, SurveyID: sv,
			SubscriptionID: subID, Topics: want[sv], PublicationURL: pub, CreatedAt: s.now()}); err != nil {
			// Untracked now, deleted as such by the next sync.
			errs = append(errs, fmt.Errorf("events: record subscription %s: %w", subID, err))
		}
	}
	if created > 0 {
		s.log.Info("event subscriptions created", zap.String("integrationId", in.ID), zap.Int("created", created))
	}
	return errors.Join(errs...)
}

// RemoveAll deletes every subscription of the integration, in Qualtrics and
// here: when events are disabled, and before the integration is deleted.
func (s *Service) RemoveAll(ctx context.Context, in store.Integration, client *qualtrics.Client) error {
	s.forgetKey(in.ID)
	have, err := s.store.ListEventSubscriptions(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("events: remove subscriptions: %w", err)
	}
	remote, err := remoteSubscriptions(ctx, client, in.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range have {
		_, alive := remote[h.SubscriptionID]
		delete(remote, h.SubscriptionID)
		if err := s.removeOne(ctx, client, h, alive); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range remote {
		if err := client.DeleteEventSubscription(ctx, id); err != nil && !qualtrics.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("events: delete untracked subscription %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) removeOne(ctx context.Context, client *qualtrics.Client, h store.EventSubscription, alive bool) error {
	if alive {
		if err := client.DeleteEventSubscription(ctx, h.SubscriptionID); err != nil && !qualtrics.IsNotFound(err) {
			return fmt.Errorf("events: delete subscription %s: %w", h.SubscriptionID, err)
		}
	}
	if err := s.store.DeleteEventSubscription(ctx, h.IntegrationID, h.SurveyID); err != nil {
		return fmt.Errorf("events: forget subscription %s: %w", h.SubscriptionID, err)
	}
	return nil
}

// remoteSubscriptions lists the brand's subscriptions that point to this
// integration's hook, whatever the host (the public URL may have changed).
// Another integration on the same brand has its own path and is left alone.
func remoteSubscriptions(ctx context.Context, client *qualtrics.Client, integrationID string) (map[string]qualtrics.EventSubscription, error) {
	suffix := "/hooks/qualtrics/" + integrationID
	out := map[string]qualtrics.EventSubscription{}
	for page, err := range client.EventSubscriptions(ctx) {
		if err != nil {
			return nil, fmt.Errorf("events: list subscriptions: %w", err)
		}
		for _, e := range page {
			if u, err := url.Parse(e.PublicationURL); err == nil && strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), suffix) {
				out[e.ID] = e
			}
		}
	}
	return out, nil
}

// sharedKey returns the integration's shared key, creating and sealing one
// (32 random bytes, hex) on first use.
func (s *Service) sharedKey(ctx context.Context, integrationID string) (string, error) {
	k, err := s.store.GetEventsKey(ctx, integrationID)
	if err != nil {
		return "", fmt.Errorf("events: shared key: %w", err)
	}
	if len(k.Sealed) == 0 {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("events: shared key: %w", err)
		}
		keyID, sealed, err := seal.SealSecret(s.keyring, seal.EventsKey, integrationID, []byte(hex.EncodeToString(raw)))
		if err != nil {
			return "", fmt.Errorf("events: shared key: %w", err)
		}
		if k, err = s.store.SetEventsKeyIfMissing(ctx, integrationID, keyID, sealed); err != nil {
			return "", fmt.Errorf("events: shared key: %w", err)
		}
	}
	plain, _, err := seal.OpenSecret(s.keyring, seal.EventsKey, integrationID, k.KeyID, k.Sealed)
	if err != nil {
		return "", fmt.Errorf("events: shared key: %w", err)
	}
	return string(plain), nil
}
