package store_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// reachedFixture is an integration past its first full sync with one active
// survey and one invitation, whose recipients are merged as a sync would.
type reachedFixture struct {
	t   *testing.T
	s   *store.Store
	id  string
	now time.Time
}

func newReachedFixture(t *testing.T) *reachedFixture {
	t.Helper()
	s := storetest.New(t)
	f := &reachedFixture{t: t, s: s, id: newIntegration(t, s), now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	mustExec(t, s, `UPDATE integrations SET first_full_sync_at = $2 WHERE id = $1`, f.id, f.now.Add(-time.Hour))
	mustExec(t, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active) VALUES ($1, 'SV_1', 'Survey', true)`, f.id)
	mustExec(t, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, request_type, link_expiration, sent)
		VALUES ($1, 'EMD_1', 'SV_1', 'Invite', $2, 10)`, f.id, f.now.Add(10*24*time.Hour))
	return f
}

// merge merges one listing of EMD_1 (contact → history) and returns the
// changes it reported.
func (f *reachedFixture) merge(rows map[string]store.HistoryInput) []store.Change {
	f.t.Helper()
	ctx := context.Background()
	var changes []store.Change
	err := f.s.WithTx(ctx, func(tx pgx.Tx) error {
		b, err := store.BeginRecipientsTx(ctx, tx, f.id, "EMD_1", "SV_1")
		if err != nil {
			return err
		}
		var h []store.HistoryInput
		var l []store.LinkInput
		for cid, row := range rows {
			row.ContactID = cid
			h = append(h, row)
			l = append(l, store.LinkInput{ContactID: cid, Email: cid + "@example.com", Link: "https://x.example/" + cid})
		}
		if err := b.AddHistory(ctx, h); err != nil {
			return err
		}
		if err := b.AddLinks(ctx, l); err != nil {
			return err
		}
		_, err = b.Merge(ctx, f.now, func(c []store.Change) error { changes = append(changes, c...); return nil })
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].ContactID < changes[j].ContactID })
	return changes
}

// raiseNew runs the new_survey rule on the changes, as the sync's notifier does.
func (f *reachedFixture) raiseNew(changes []store.Change) int {
	f.t.Helper()
	var refs []store.RecipientRef
	for _, c := range changes {
		if c.Kind == store.ChangeRecipientDelivered {
			refs = append(refs, store.RecipientRef{DistributionID: c.DistributionID, ContactID: c.ContactID})
		}
	}
	var raised store.Raised
	err := f.s.WithTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		raised, err = f.s.RaiseNewSurveyTx(context.Background(), tx, store.RaiseOptions{IntegrationID: f.id, Now: f.now,
			Window: 24 * time.Hour, FeedLifetime: 48 * time.Hour}, refs)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return raised.Count
}

func (f *reachedFixture) active(contact string) int {
	f.t.Helper()
	got, err := f.s.MyActiveSurveys(context.Background(), strings.ToLower(contact)+"@example.com", f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(got)
}

// Issue 17.1: only the reached statuses of DESIGN.md announce a survey and put
// it in My active surveys; a bounce, a failure, a block or a skip is stored
// (Brand Admins see it) and reaches no one. A SoftBounce that becomes Success
// on a later sync is announced then.
func TestOnlyReachedInvitationsAnnounceAndListASurvey(t *testing.T) {
	t.Parallel()
	f := newReachedFixture(t)
	notReached := []string{"HardBounce", "SoftBounce", "Failure", "Blocked", "Skipped", "Error", "Unknown", "Pending", "SomethingNew"}
	rows := map[string]store.HistoryInput{"reached": {Status: "Success", SentAt: f.now.Add(-time.Hour)}}
	for _, st := range notReached {
		rows[st] = store.HistoryInput{Status: st, SentAt: f.now.Add(-time.Hour)}
	}
	changes := f.merge(rows)
	var delivered []string
	for _, c := range changes {
		if c.Kind == store.ChangeRecipientDelivered {
			delivered = append(delivered, c.ContactID)
		}
	}
	if len(delivered) != 1 || delivered[0] != "reached" {
		t.Fatalf("delivered %v, want only the reached recipient", delivered)
	}
	// Even handed every row, the rule announces only the reached one.
	var all []store.Change
	for cid := range rows {
		all = append(all, store.Change{Kind: store.ChangeRecipientDelivered, DistributionID: "EMD_1", ContactID: cid})
	}
	if n := f.raiseNew(all); n != 1 {
		t.Fatalf("new_survey raised %d times, want 1 (the reached recipient)", n)
	}
	if f.active("reached") != 1 {
		t.Fatal("the reached recipient does not see the survey")
	}
	for _, st := range notReached {
		if n := f.active(st); n != 0 {
			t.Errorf("a %s recipient sees %d active surveys, want none", st, n)
		}
	}
	stored, err := f.s.ListStoredRecipients(context.Background(), f.id, "EMD_1")
	if err != nil || len(stored) != len(rows) {
		t.Fatalf("%d recipients stored (%v), want %d: bounced ones are kept for Brand Admins", len(stored), err, len(rows))
	}

	// SoftBounce → Success on a later sync: announced now.
	f.now = f.now.Add(time.Hour)
	rows["SoftBounce"] = store.HistoryInput{Status: "Success", SentAt: f.now.Add(-time.Minute)}
	changes = f.merge(rows)
	if len(changes) != 1 || changes[0].ContactID != "SoftBounce" || changes[0].Kind != store.ChangeRecipientDelivered {
		t.Fatalf("changes %+v, want SoftBounce delivered", changes)
	}
	if n := f.raiseNew(changes); n != 1 {
		t.Fatalf("new_survey raised %d times after the bounce turned to Success, want 1", n)
	}
	if f.active("SoftBounce") != 1 {
		t.Fatal("the recipient reached on the second try does not see the survey")
	}
}

// Issue 17.2: a listing read before an event committed (Qualtrics' listings
// lag behind events) never moves the recipient's progress back, unless its
// row carries a newer date than the stored ones; and events leave the
// distribution's figures to the listing.
func TestListingNeverUndoesAnEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReachedFixture(t)
	sent := f.now.Add(-2 * time.Hour)
	f.merge(map[string]store.HistoryInput{"c1": {Status: "Success", SentAt: sent}})

	finishedAt := f.now.Add(-10 * time.Minute)
	var evID int64
	err := f.s.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		evID, _, err = f.s.InsertEventTx(ctx, tx, store.QualtricsEvent{IntegrationID: f.id, Topic: "completed", SurveyID: "SV_1",
			ResponseID: "R_1", RecipientID: "c1", DistributionID: "EMD_1", OccurredAt: &finishedAt, ReceivedAt: finishedAt})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.s.ApplyEvent(ctx, evID, finishedAt, func(store.QualtricsEvent) store.EventEffect {
		return store.EventEffect{RecipientStatus: "SurveyFinished"}
	})
	if err != nil || out != store.EventApplied {
		t.Fatalf("apply: %v (%v)", out, err)
	}
	var started, finished int
	if err := f.s.Pool().QueryRow(ctx, `SELECT started, finished FROM distributions WHERE integration_id = $1`, f.id).Scan(&started, &finished); err != nil {
		t.Fatal(err)
	}
	if started != 0 || finished != 0 {
		t.Errorf("the event moved the distribution's figures to started %d finished %d; the next listing would contradict them", started, finished)
	}

	status := func() store.StoredRecipient {
		t.Helper()
		got, err := f.s.ListStoredRecipients(ctx, f.id, "EMD_1")
		if err != nil || len(got) != 1 {
			t.Fatalf("stored %v (%v)", got, err)
		}
		return got[0]
	}
	// The lagging listing: Opened, opened before the response finished.
	f.now = f.now.Add(time.Minute)
	opened := f.now.Add(-time.Hour)
	changes := f.merge(map[string]store.HistoryInput{"c1": {Status: "Opened", SentAt: sent, OpenedAt: opened}})
	if got := status(); got.Status != "SurveyFinished" || got.ResponseID != "R_1" || got.ResponseCompletedAt == nil {
		t.Fatalf("after a lagging listing the recipient is %s (response %q, completed %v), want SurveyFinished kept", got.Status, got.ResponseID, got.ResponseCompletedAt)
	}
	if len(changes) != 0 {
		t.Errorf("a lagging listing reported %v", changes)
	}
	// The same listing again changes nothing either (no rewrite every sync).
	var updated time.Time
	if err := f.s.Pool().QueryRow(ctx, `SELECT updated_at FROM recipients WHERE integration_id = $1`, f.id).Scan(&updated); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	f.merge(map[string]store.HistoryInput{"c1": {Status: "Opened", SentAt: sent, OpenedAt: opened}})
	var again time.Time
	if err := f.s.Pool().QueryRow(ctx, `SELECT updated_at FROM recipients WHERE integration_id = $1`, f.id).Scan(&again); err != nil {
		t.Fatal(err)
	}
	if !again.Equal(updated) {
		t.Errorf("the same lagging listing rewrote the row (updated_at %v → %v)", updated, again)
	}
	// A newer date in the listing (sent again after the response) wins.
	resent := f.now.Add(-time.Minute)
	f.merge(map[string]store.HistoryInput{"c1": {Status: "Success", SentAt: resent}})
	if got := status(); got.Status != "Success" {
		t.Fatalf("a listing with a newer date left the recipient %s, want Success", got.Status)
	}
}
