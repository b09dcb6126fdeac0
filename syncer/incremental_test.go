package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
)

// world picks what the incremental test changes: two active surveys, and a
// live invitation with a recipient who has not finished.
type world struct {
	keep, deactivate qualtricssim.Survey
	live             qualtricssim.Distribution
	unfinished       qualtricssim.Recipient
}

func pickWorld(t *testing.T, e *env) world {
	t.Helper()
	var w world
	now := time.Now()
	for _, sv := range e.sim.Surveys(e.brand.ID) {
		if !sv.IsActive {
			continue
		}
		found := false
		if w.live.ID == "" {
			for _, d := range e.sim.Distributions(sv.ID) {
				if d.RequestType != qualtricssim.RequestInvite || !isLive(d, now) {
					continue
				}
				for _, rc := range e.sim.Recipients(d.ID) {
					if rc.Status == qualtricssim.StatusSuccess || rc.Status == qualtricssim.StatusOpened {
						w.keep, w.live, w.unfinished, found = sv, d, rc, true
						break
					}
				}
				if found {
					break
				}
			}
		}
		if !found && w.deactivate.ID == "" {
			w.deactivate = sv
		}
	}
	if w.live.ID == "" || w.deactivate.ID == "" {
		t.Fatalf("the generated brand lacks what the test needs: %+v", w)
	}
	return w
}

func TestIncrementalSyncPicksUpChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 7, spec: qualtricssim.Spec{Surveys: 8, Recipients: 240}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	if calls, _ := e.notifier.take(); calls != 0 {
		t.Fatalf("the first full sync notified %d times", calls)
	}
	w := pickWorld(t, e)

	t.Run("an incremental sync of an unchanged brand reads no history, no links, no details", func(t *testing.T) {
		e.sim.ResetCalls()
		run := e.sync(ctx, microapps.SyncIncremental)
		e.mustSucceed(run)
		for _, ep := range []string{qualtricssim.EndpointHistory, qualtricssim.EndpointLinks, qualtricssim.EndpointSurvey} {
			if n := e.sim.Calls(ep); n != 0 {
				t.Errorf("%d calls to %s", n, ep)
			}
		}
		if e.sim.Calls(qualtricssim.EndpointSurveys) == 0 || e.sim.Calls(qualtricssim.EndpointDistributions) == 0 {
			t.Errorf("the survey list or the distributions were not read")
		}
		if len(run.Changes) != 0 || run.Kind != microapps.SyncIncremental {
			t.Errorf("kind %s, changes %v", run.Kind, run.Changes)
		}
		if calls, _ := e.notifier.take(); calls != 0 {
			t.Errorf("notifier called %d times", calls)
		}
	})

	// The world moves on.
	now := time.Now().UTC().Truncate(time.Second)
	added, err := e.sim.AddDistribution(qualtricssim.Distribution{
		SurveyID: w.keep.ID, LinkExpiration: now.Add(7 * 24 * time.Hour),
		Headers: qualtricssim.Headers{Subject: "Second wave"},
		Recipients: []qualtricssim.Recipient{
			{Email: "  New.Person@Example.COM ", FirstName: "New", LastName: "Person", Status: qualtricssim.StatusSuccess},
			{Email: "later@example.com", FirstName: "Later", LastName: "Person", Status: qualtricssim.StatusPending},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	addedRecipients := e.sim.Recipients(added.ID)
	if _, err := e.sim.SetRecipientStatus(w.live.ID, w.unfinished.ContactID, qualtricssim.StatusSurveyFinished, now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.SetSurveyActive(w.deactivate.ID, false); err != nil {
		t.Fatal(err)
	}

	e.sim.ResetCalls()
	run := e.sync(ctx, microapps.SyncIncremental)
	e.mustSucceed(run)
	has := func(changes []store.Change, want store.Change) bool {
		for _, c := range changes {
			if c == want {
				return true
			}
		}
		return false
	}
	_, notified := e.notifier.take()
	wants := []struct {
		name   string
		change store.Change
	}{
		{"a new distribution of an old survey is new", store.Change{Kind: store.ChangeDistributionNew, SurveyID: w.keep.ID, DistributionID: added.ID}},
		{"its recipient with status Success is delivered", store.Change{Kind: store.ChangeRecipientDelivered, SurveyID: w.keep.ID, DistributionID: added.ID, ContactID: addedRecipients[0].ContactID}},
		{"a recipient who finished changed status", store.Change{Kind: store.ChangeRecipientStatus, SurveyID: w.keep.ID, DistributionID: w.live.ID, ContactID: w.unfinished.ContactID}},
		{"the figures of that distribution changed", store.Change{Kind: store.ChangeDistributionStats, SurveyID: w.keep.ID, DistributionID: w.live.ID}},
		{"a deactivated survey is deactivated", store.Change{Kind: store.ChangeSurveyDeactivated, SurveyID: w.deactivate.ID}},
	}
	for _, want := range wants {
		t.Run(want.name, func(t *testing.T) {
			if !has(run.Changes, want.change) {
				t.Errorf("run changes lack %+v: %+v", want.change, run.Changes)
			}
			if !has(notified, want.change) {
				t.Errorf("the notifier was not handed %+v", want.change)
			}
		})
	}
	t.Run("a pending recipient is not delivered", func(t *testing.T) {
		if has(run.Changes, store.Change{Kind: store.ChangeRecipientDelivered, SurveyID: w.keep.ID, DistributionID: added.ID, ContactID: addedRecipients[1].ContactID}) {
			t.Errorf("pending recipient reported delivered")
		}
		if got := kinds(run.Changes); got[store.ChangeRecipientDelivered] != 1 || got[store.ChangeRecipientStatus] != 1 {
			t.Errorf("change kinds %v", got)
		}
		if run.Notifications != len(notified) {
			t.Errorf("run counts %d notifications, the notifier raised %d", run.Notifications, len(notified))
		}
	})
	t.Run("history and links are read only for the two distributions that changed", func(t *testing.T) {
		if h, l := e.sim.Calls(qualtricssim.EndpointHistory), e.sim.Calls(qualtricssim.EndpointLinks); h != 2 || l != 2 {
			t.Errorf("history %d calls, links %d calls, want 2 and 2", h, l)
		}
	})
	t.Run("the stored state matches the simulator, email normalised", func(t *testing.T) {
		e.checkMatchesSim(ctx)
		rs, err := e.st.ListStoredRecipients(ctx, e.in.ID, added.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.ContactID == addedRecipients[0].ContactID && (r.Email != "new.person@example.com" || r.RespondLink != addedRecipients[0].Link) {
				t.Errorf("stored %+v", r)
			}
		}
	})
	t.Run("a pending recipient whose email leaves is delivered on the next incremental", func(t *testing.T) {
		if _, err := e.sim.SetRecipientStatus(added.ID, addedRecipients[1].ContactID, qualtricssim.StatusSuccess, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		run := e.sync(ctx, microapps.SyncIncremental)
		e.mustSucceed(run)
		want := store.Change{Kind: store.ChangeRecipientDelivered, SurveyID: w.keep.ID, DistributionID: added.ID, ContactID: addedRecipients[1].ContactID}
		if !has(run.Changes, want) {
			t.Errorf("changes %+v lack %+v", run.Changes, want)
		}
	})
	t.Run("a reactivated survey is activated and its details read again", func(t *testing.T) {
		if _, err := e.sim.SetSurveyActive(w.deactivate.ID, true); err != nil {
			t.Fatal(err)
		}
		e.sim.ResetCalls()
		run := e.sync(ctx, microapps.SyncIncremental)
		e.mustSucceed(run)
		if !has(run.Changes, store.Change{Kind: store.ChangeSurveyActivated, SurveyID: w.deactivate.ID}) {
			t.Errorf("changes %+v", run.Changes)
		}
		if n := e.sim.Calls(qualtricssim.EndpointSurvey); n != 1 {
			t.Errorf("%d survey details read, want 1", n)
		}
	})
}
