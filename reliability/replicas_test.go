package reliability

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// TestAKilledReplicasSyncIsFinishedByTheOther runs two `microapps serve`
// processes on one database, SIGKILLs the one working a sync, and checks the
// other continues the same run unaided, with the production settings (a job
// is a 30 s slice of at most a minute, RescueStuckJobsAfter 90 s): within two
// minutes of the kill, reading no page of a unit finished before it again;
// one run for the trigger, the data equal to the simulator's, each
// notification raised once.
func TestAKilledReplicasSyncIsFinishedByTheOther(t *testing.T) {
	if testing.Short() {
		t.Skip("two replicas and a leader failover: skipped under -short")
	}
	t.Parallel()
	ctx := context.Background()
	q := newSim(t, simOptions{seed: 41, spec: qualtricssim.Spec{Surveys: 8, Recipients: 600}})
	dbURL := storetest.NewMigrated(t)
	_, rawKeys := newKeyring(t)
	st, err := store.Open(ctx, dbURL, store.Options{AppName: "reliability-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	a := startServe(t, serveEnv(dbURL, rawKeys, 2))
	a.waitReady(30 * time.Second)
	in := createThroughAPI(t, a.base, map[string]any{"name": "Sales", "baseUrl": q.baseURL(), "token": q.token,
		"logging": map[string]any{"enabled": true}})
	if run, _ := syncThroughAPI(t, a.base, in.ID, "full", 2*time.Minute); run.Status != "succeeded" {
		t.Fatalf("first sync: %s %q", run.Status, run.Error)
	}
	const invited = 5
	for i := range invited {
		addInvitation(t, q, fmt.Sprintf("person%d@example.com", i), fmt.Sprintf("Pulse %d", i))
	}

	// A works a full sync (raising the new invitations), slowed down so it is mid-way when killed.
	q.sim.SetFaults(qualtricssim.Faults{Latency: 400 * time.Millisecond})
	r := call(t, nil, "POST", a.base+"/api/v1/integrations/"+in.ID+"/syncs", map[string]string{"kind": "full"}, adminToken)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST sync: %d %s", r.status, r.body)
	}
	run := decode[syncRunResource](t, r)
	b := startServe(t, serveEnv(dbURL, rawKeys, 2))
	b.waitReady(30 * time.Second)
	var jobID int64
	var state string
	for d := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := st.Pool().QueryRow(ctx, `SELECT j.id, j.state FROM sync_runs r JOIN river_job j ON j.id = r.river_job_id WHERE r.id = $1`, run.ID).Scan(&jobID, &state)
		if err == nil && state == "running" {
			break
		}
		if time.Now().After(d) {
			t.Fatalf("the sync job never ran: %v %q", err, state)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	callsBefore := q.sim.TotalCalls()
	a.kill()
	killedAt := time.Now()
	if got, _ := st.GetSyncRun(ctx, in.ID, run.ID); got.Status != "running" {
		t.Fatalf("the run was %q when its replica was killed: the kill proves nothing", got.Status)
	}
	units, err := st.ListSyncUnits(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var doneBefore []string
	for _, u := range units {
		switch {
		case u.Status != store.UnitDone:
		case u.Kind == store.UnitRecipients:
			doneBefore = append(doneBefore, "/distributions/"+u.DistributionID+"/")
		case u.NeedDetails:
			doneBefore = append(doneBefore, "/surveys/"+u.SurveyID)
		}
	}
	q.sim.SetFaults(qualtricssim.Faults{})

	var final store.SyncRun
	for d := time.Now().Add(150 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		final, _ = st.GetSyncRun(ctx, in.ID, run.ID)
		if final.Status == "succeeded" || final.Status == "failed" {
			break
		}
		if time.Now().After(d) {
			t.Fatalf("the killed replica's run is still %q 150 s later\n%s", final.Status, tail(b.logs(), 4000))
		}
	}
	if took := time.Since(killedAt); took > 2*time.Minute {
		t.Errorf("the run was taken over and finished %v after the kill, want under 2 minutes", took.Round(time.Second))
	}
	logs, err := st.ListRequestLogs(ctx, in.ID, killedAt, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		for _, p := range doneBefore {
			if strings.Contains(l.Path, p) {
				t.Errorf("%s was read again after the kill, though its unit was done before it", l.Path)
			}
		}
	}
	t.Logf("%d of %d units were done before the kill; %d calls after it", len(doneBefore), len(units), len(logs))
	t.Logf("the surviving replica finished the run %v after the kill (%s; %d Qualtrics calls before the kill, %d after)",
		time.Since(killedAt).Round(time.Millisecond), final.Status, callsBefore, q.sim.TotalCalls()-callsBefore)
	if final.Status != "succeeded" {
		t.Errorf("the rescued run %s: %q", final.Status, final.Error)
	}
	checkMatchesSim(t, st, in.ID, q)

	var runs, jobs, open int
	_ = st.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT river_job_id), count(*) FILTER (WHERE status IN ('queued', 'running'))
		FROM sync_runs WHERE integration_id = $1`, in.ID).Scan(&runs, &jobs, &open)
	if runs != 2 || jobs != 2 || open != 0 {
		t.Errorf("%d sync runs with %d jobs (%d open) for two triggers, want 2, 2 and 0", runs, jobs, open)
	}
	total, distinct, byKind := notificationCounts(t, st)
	if total != distinct || byKind["new_survey"] != invited {
		t.Errorf("%d notifications (%d dedupe keys) %v, want %d new_survey once each", total, distinct, byKind, invited)
	}
	var attempts int
	_ = st.Pool().QueryRow(ctx, `SELECT attempt FROM river_job WHERE id = $1`, jobID).Scan(&attempts)
	if attempts < 2 {
		t.Errorf("the job ran %d times: it was not rescued but finished by the killed replica?", attempts)
	}
}
