package syncer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/syncer"
)

// TestANewSurveyIsAnnouncedWithItsDueDate adds a survey whose invitation has
// no expiry of its own (the due date is the survey's end date, from its
// details) and one that has already ended: the sync reads a survey's details
// before its distributions, so the notice carries the due date; the ended
// survey is never announced.
func TestANewSurveyIsAnnouncedWithItsDueDate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 9, spec: qualtricssim.Spec{Surveys: 3, Recipients: 60}, syncOpts: func(o *syncer.Options) {
		o.Notifier = notify.New(notify.Options{Store: o.Store.(notify.Store)})
	}})
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))

	now := time.Now().UTC().Truncate(time.Second)
	end := now.Add(5 * 24 * time.Hour)
	add := func(name, email string, start, end, link time.Time) {
		sv, err := e.sim.AddSurvey(e.brand.ID, qualtricssim.Survey{Name: name, IsActive: true,
			CreationDate: start, LastModifiedDate: start, StartDate: start, EndDate: end})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, RequestType: "Invite", SendDate: now, LinkExpiration: link,
			Headers:    qualtricssim.Headers{Subject: name},
			Recipients: []qualtricssim.Recipient{{Email: email, FirstName: "A", LastName: "B", Status: "Success", SentAt: now}}}); err != nil {
			t.Fatal(err)
		}
	}
	add("Due on its end date", "due@example.com", now, end, time.Time{})
	add("Already ended", "ended@example.com", now.Add(-10*24*time.Hour), now.Add(-time.Hour), time.Time{})
	add("Ended, its links still open", "ended-open@example.com", now.Add(-10*24*time.Hour), now.Add(-time.Hour), now.Add(3*24*time.Hour))
	e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))

	rows, err := e.st.Pool().Query(ctx, `SELECT email, data FROM notifications WHERE kind = 'new_survey' AND integration_id = $1`, e.in.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var email string
		var data []byte
		if err := rows.Scan(&email, &data); err != nil {
			t.Fatal(err)
		}
		var d struct {
			ExpiresAt *string `json:"expiresAt"`
		}
		_ = json.Unmarshal(data, &d)
		got[email] = ""
		if d.ExpiresAt != nil {
			got[email] = *d.ExpiresAt
		}
	}
	if want := end.Format(time.RFC3339); got["due@example.com"] != want {
		t.Errorf("new_survey for the new survey: due %q, want %q (notices: %v)", got["due@example.com"], want, got)
	}
	for _, email := range []string{"ended@example.com", "ended-open@example.com"} {
		if _, ok := got[email]; ok {
			t.Errorf("an ended survey was announced to %s: %v", email, got)
		}
	}
}
