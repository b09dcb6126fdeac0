package syncer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

// TestTheFirstFullSyncRefreshesPlannerStatistics syncs a brand of 20,000
// recipient rows into an empty database, with autovacuum off as on the
// development machines (and late in production): the sync itself runs
// ANALYZE, so My active surveys is planned on the user's index rather than on
// statistics from before the brand arrived.
func TestTheFirstFullSyncRefreshesPlannerStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{seed: 8, spec: qualtricssim.Spec{Surveys: 40, Recipients: 20000, Emails: []string{"alice@example.com"}}})
	var before *time.Time
	if err := e.st.Pool().QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'recipients'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		t.Fatalf("the fresh database's recipients were analyzed at %v already", before)
	}
	e.mustSucceed(e.sync(ctx, microapps.SyncFull))
	var analyzed *time.Time
	if err := e.st.Pool().QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'recipients'`).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if analyzed == nil {
		t.Fatal("the first full sync did not analyze recipients")
	}
	plan, err := e.st.ExplainMyActiveSurveys(ctx, "alice@example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan, "Seq Scan on recipients") || !strings.Contains(plan, "recipients_") {
		t.Errorf("My active surveys is not planned on a recipients index:\n%s", plan)
	}
	t.Run("an incremental that changes nothing does not analyze again", func(t *testing.T) {
		e.mustSucceed(e.sync(ctx, microapps.SyncIncremental))
		var again *time.Time
		if err := e.st.Pool().QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'recipients'`).Scan(&again); err != nil {
			t.Fatal(err)
		}
		if again == nil || !again.Equal(*analyzed) {
			t.Errorf("recipients analyzed again at %v (first at %v)", again, analyzed)
		}
	})
}
