package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
)

// Issue 32 (found by the chaos run, seed 888417538): a Qualtrics event that
// brings a stored Pending recipient to a reached status must not swallow
// their new_survey notice. The event moved the row to SurveyStarted, the next
// sync read SurveyStarted, equal to what was stored, and reported nothing:
// the notice was never raised. Now the sync that next reads the recipient
// reports it delivered, once.
func TestARecipientReachedThroughAnEventIsAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 21, spec: qualtricssim.Spec{Surveys: 8, Recipients: 800}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	// A stored Pending recipient of a live invitation.
	var dist, contact, surveyID string
	for _, d := range liveInvitations(t, e, 0) {
		for _, rc := range e.sim.Recipients(d.ID) {
			if rc.Status == qualtricssim.StatusPending {
				dist, contact, surveyID = d.ID, rc.ContactID, d.SurveyID
				break
			}
		}
		if dist != "" {
			break
		}
	}
	if dist == "" {
		t.Fatal("no pending recipient in a live invitation")
	}
	_, _ = e.notifier.take()

	// Qualtrics moves them on, and its event arrives before the next sync.
	now := time.Now()
	if _, err := e.sim.SetRecipientStatus(dist, contact, qualtricssim.StatusSurveyStarted, now); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := e.st.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, _, err = e.st.InsertEventTx(ctx, tx, store.QualtricsEvent{IntegrationID: e.in.ID, Topic: "surveyengine.startedResponse." + surveyID,
			SurveyID: surveyID, ResponseID: "R_started1", RecipientID: contact, DistributionID: dist, Status: "Started",
			OccurredAt: &now, ReceivedAt: now})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out, err := e.st.ApplyEvent(ctx, id, now, func(store.QualtricsEvent) store.EventEffect {
		return store.EventEffect{RecipientStatus: string(qualtricssim.StatusSurveyStarted)}
	})
	if err != nil || out != store.EventApplied {
		t.Fatalf("apply: %v, %v", out, err)
	}

	e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
	_, changes := e.notifier.take()
	delivered := 0
	for _, c := range changes {
		if c.DistributionID == dist && c.ContactID == contact && c.Kind == store.ChangeRecipientDelivered {
			delivered++
		}
	}
	if delivered != 1 {
		t.Fatalf("the recipient reached through an event was announced %d times, want once: %v", delivered, changes)
	}
	// Announced once: the next sync reports nothing more for them.
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	_, changes = e.notifier.take()
	for _, c := range changes {
		if c.DistributionID == dist && c.ContactID == contact {
			t.Errorf("announced again: %+v", c)
		}
	}
}
