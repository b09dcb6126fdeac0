package events_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

func TestAFinishedRecipientIsFinishedHereWithinTwoSecondsWithoutASync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	brand := simBrand("brandone", "SV_one", "EMD_one", now)
	e := newEnv(t, envOptions{river: true}, brand)
	in := e.addIntegration(brand, true)
	client := e.client(in)

	if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
		t.Fatal(err)
	}
	subs := e.sim.Subscriptions("brandone")
	wantURL := e.hooks.URL + "/hooks/qualtrics/" + in.ID
	var topics []string
	for _, s := range subs {
		if s.PublicationURL != wantURL {
			t.Errorf("subscription %s points to %q, want %q", s.ID, s.PublicationURL, wantURL)
		}
		if s.SharedKey == "" || len(s.SharedKey) != 64 {
			t.Errorf("subscription %s has a shared key of %d characters, want 64 hex", s.ID, len(s.SharedKey))
		}
		e.secret(s.SharedKey)
		topics = append(topics, s.Topics...)
	}
	slices.Sort(topics)
	want := []string{"controlpanel.activateSurvey", "controlpanel.deactivateSurvey",
		"surveyengine.completedResponse.SV_one", "surveyengine.partialResponse.SV_one", "surveyengine.startedRecipientSession.SV_one"}
	if len(subs) != 2 || !slices.Equal(topics, want) {
		t.Fatalf("simulator has %d subscriptions with topics %v, want 2 with %v", len(subs), topics, want)
	}
	// The key is stored sealed, never in clear.
	var sealed []byte
	if err := e.store.Pool().QueryRow(ctx, `SELECT events_key_sealed FROM integrations WHERE id = $1`, in.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || strings.Contains(string(sealed), subs[0].SharedKey) {
		t.Fatalf("the shared key is not stored sealed")
	}

	// A second sync with nothing changed changes nothing.
	if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
		t.Fatal(err)
	}
	if again := e.sim.Subscriptions("brandone"); len(again) != 2 || again[0].ID != subs[0].ID || again[1].ID != subs[1].ID {
		t.Fatalf("a second sync changed the subscriptions: %+v", again)
	}

	started := time.Now()
	d, err := e.sim.SetRecipientStatus("EMD_one", "CID_brandone1", qualtricssim.StatusSurveyFinished, now)
	if err != nil {
		t.Fatal(err)
	}
	finished := waitFor(2*time.Second, func() bool {
		return e.recipient(in.ID, "EMD_one", "CID_brandone1").Status == "SurveyFinished"
	})
	latency := time.Since(started)
	if !finished {
		t.Fatalf("the recipient is not SurveyFinished 2 s after the simulator finished them")
	}
	t.Logf("event latency, simulator change to recipient row finished: %v", latency)
	for _, res := range d.Wait() {
		if res.Err != nil || res.StatusCode != http.StatusAccepted {
			t.Errorf("callback %s answered %d (%v)", res.Topic, res.StatusCode, res.Err)
		}
	}
	simRecipient := e.sim.Recipients("EMD_one")[0]
	got := e.recipient(in.ID, "EMD_one", "CID_brandone1")
	if got.ResponseID != simRecipient.ResponseID || got.CompletedAt == nil || !got.CompletedAt.Equal(now) || got.StartedAt == nil {
		t.Errorf("recipient = %+v, want response %s completed at %v", got, simRecipient.ResponseID, now)
	}
	// The distribution's figures are Qualtrics' own: the event leaves them to
	// the next listing, which would otherwise contradict them.
	if s, f := e.counters(in.ID, "EMD_one"); s != 0 || f != 0 {
		t.Errorf("distribution started/finished = %d/%d, want 0/0 (left to the listing)", s, f)
	}

	// Qualtrics retrying the callback changes nothing: one row, applied once.
	replay := msg("SV_one", simRecipient.ResponseID, "CID_brandone1", "EMD_one", "brandone", "Complete", now)
	if r := e.post(in.ID, "surveyengine.completedResponse.SV_one", replay, subs[1].SharedKey, ""); r.status != http.StatusOK {
		t.Fatalf("replayed callback answered %d: %s", r.status, r.body)
	}
	time.Sleep(100 * time.Millisecond) // room for a wrongly queued second apply
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1 AND attempts = 1 AND applied_at IS NOT NULL`, in.ID); n != 1 {
		t.Errorf("%d events applied once, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, in.ID); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
	if s, f := e.counters(in.ID, "EMD_one"); s != 0 || f != 0 {
		t.Errorf("after the replay started/finished = %d/%d, want 0/0", s, f)
	}

	// Deactivating the survey reaches is_active, and the next subscription
	// sync removes the survey's subscription.
	d, err = e.sim.SetSurveyActive("SV_one", false)
	if err != nil {
		t.Fatal(err)
	}
	d.Wait()
	if !waitFor(2*time.Second, func() bool {
		return e.count(`SELECT count(*) FROM surveys WHERE integration_id = $1 AND qualtrics_id = 'SV_one' AND NOT is_active`, in.ID) == 1
	}) {
		t.Fatalf("the survey is still active 2 s after deactivateSurvey")
	}
	if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
		t.Fatal(err)
	}
	if subs := e.sim.Subscriptions("brandone"); len(subs) != 1 || !slices.Equal(subs[0].Topics, want[:2]) {
		t.Fatalf("after deactivation the simulator has %+v, want only the brand-level subscription", subs)
	}

	// Disabling events removes every subscription, in Qualtrics and here.
	in.EventsEnabled = false
	if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
		t.Fatal(err)
	}
	if subs := e.sim.Subscriptions("brandone"); len(subs) != 0 {
		t.Fatalf("after disabling events the simulator still has %+v", subs)
	}
	if n := e.count(`SELECT count(*) FROM event_subscriptions WHERE integration_id = $1`, in.ID); n != 0 {
		t.Fatalf("%d subscriptions still recorded", n)
	}
}

func TestSubscriptionSyncRepairsWhatQualtricsLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	brand := simBrand("brandrep", "SV_rep", "EMD_rep", now)
	other := simBrand("brandrep2", "SV_rep2", "EMD_rep2", now)
	brand.Surveys = append(brand.Surveys, other.Surveys...) // a second survey, inactive here
	brand.Surveys[1].IsActive = false
	e := newEnv(t, envOptions{}, brand)
	in := e.addIntegration(brand, true)
	client := e.client(in)
	if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Subscriptions("brandrep")); n != 2 {
		t.Fatalf("%d subscriptions, want 2 (brand-level and the one active survey)", n)
	}

	for _, tc := range []struct {
		name   string
		change func(t *testing.T)
	}{
		{"a subscription deleted in Qualtrics is created again", func(t *testing.T) {
			sub := e.sim.Subscriptions("brandrep")[0]
			if err := client.DeleteEventSubscription(ctx, sub.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"an untracked subscription to this integration's hook is deleted", func(t *testing.T) {
			if _, err := client.CreateEventSubscription(ctx, qualtricsSub(events.PublicationURL(e.publicURL(), in.ID))); err != nil {
				t.Fatal(err)
			}
		}},
		{"a newly active survey gets a subscription", func(t *testing.T) {
			if _, err := e.store.Pool().Exec(ctx, `UPDATE surveys SET is_active = true WHERE integration_id = $1 AND qualtrics_id = 'SV_rep2'`, in.ID); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change(t)
			if err := e.svc.SyncSubscriptions(ctx, in.Integration, client, e.publicURL()); err != nil {
				t.Fatal(err)
			}
			wantSurveys := e.count(`SELECT count(*) FROM surveys WHERE integration_id = $1 AND is_active`, in.ID)
			subs := e.sim.Subscriptions("brandrep")
			if len(subs) != wantSurveys+1 {
				t.Fatalf("%d subscriptions in the simulator, want %d", len(subs), wantSurveys+1)
			}
			if n := e.count(`SELECT count(*) FROM event_subscriptions WHERE integration_id = $1`, in.ID); n != len(subs) {
				t.Fatalf("%d recorded, %d in the simulator", n, len(subs))
			}
		})
	}
}
