package events_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Control-panel callbacks: a survey deactivated, activated, deactivated and
// activated again within days ends active. Each dated callback is stored and
// applied, none is taken for a duplicate of an earlier one (issue 17 item 6).
// Undated ones are acknowledged and change nothing (issue 18 item 2: an
// undated control-panel MSG is the same bytes for every (de)activation, under
// either topic, so it could not be told from a replay); storing one would
// also have made a later activation look like its duplicate.
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
	for i, topic := range []string{"controlpanel.activateSurvey", "controlpanel.deactivateSurvey"} {
		r := e.post(a.ID, topic, map[string]string{"SurveyID": "SV_cp", "BrandID": "brandcp"}, key, "")
		if r.status != http.StatusOK || !strings.Contains(r.body, "ignored") {
			t.Fatalf("undated callback %d (%s): status %d: %s", i, topic, r.status, r.body)
		}
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, a.ID); n != 0 || !active() {
		t.Fatalf("undated callbacks stored %d events, survey active %v", n, active())
	}
	for i, topic := range []string{"controlpanel.deactivateSurvey", "controlpanel.activateSurvey",
		"controlpanel.deactivateSurvey", "controlpanel.activateSurvey"} {
		at := now.Add(time.Duration(i-4) * time.Hour).Format(time.RFC3339)
		r := e.post(a.ID, topic, map[string]string{"SurveyID": "SV_cp", "BrandID": "brandcp", "CompletedDate": at}, key, "")
		if r.status != http.StatusAccepted {
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
