package events_test

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Control-panel callbacks that carry no CompletedDate: a survey activated,
// deactivated and activated again within days ends active. Each callback is
// stored, none is taken for a duplicate of an earlier one.
func TestRepeatedActivationsWithoutDateAreNotDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, envOptions{})
	a := e.addIntegration(simBrand("brandcp", "SV_cp", "EMD_cp", now), true)
	key := e.sharedKey(a)
	active := func() bool {
		return e.count(`SELECT count(*) FROM surveys WHERE integration_id = $1 AND qualtrics_id = 'SV_cp' AND is_active`, a.ID) == 1
	}
	for i, topic := range []string{"controlpanel.deactivateSurvey", "controlpanel.activateSurvey",
		"controlpanel.deactivateSurvey", "controlpanel.activateSurvey"} {
		r := e.post(a.ID, topic, map[string]string{"SurveyID": "SV_cp", "BrandID": "brandcp"}, key, "")
		if r.status != http.StatusOK && r.status != http.StatusAccepted {
			t.Fatalf("callback %d (%s): status %d: %s", i, topic, r.status, r.body)
		}
		if _, err := e.svc.ReapplyPending(ctx, a.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if want := topic == "controlpanel.activateSurvey"; active() != want {
			t.Fatalf("after callback %d (%s) the survey is active = %v, want %v", i, topic, !want, want)
		}
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, a.ID); n != 4 {
		t.Fatalf("%d events stored, want 4", n)
	}
}
