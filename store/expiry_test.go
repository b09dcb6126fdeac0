package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// An expiry Qualtrics sends garbled (the client reads it as no date) or not at
// all is unknown, not "never": the recipient's and the distribution's expiry
// read before stay, so the survey still leaves My active surveys when its link
// expires instead of staying there forever.
func TestAnUnreadableExpiryDoesNotMeanNever(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	recipientExp := now.Add(48 * time.Hour)
	distExp := now.Add(24 * time.Hour)
	const email = "erin@example.com"

	sync := func(linkExp, distributionExp time.Time) {
		t.Helper()
		err := s.WithTx(ctx, func(tx pgx.Tx) error {
			// The survey has no end date: nothing below the link's expiry in the chain.
			if _, err := store.UpsertSurveysTx(ctx, tx, id, []store.SurveyInput{{ID: "SV_1", Name: "Pulse", IsActive: true}}, now); err != nil {
				return err
			}
			if _, err := store.UpsertDistributionsTx(ctx, tx, id, []store.DistributionInput{{ID: "EMD_1", SurveyID: "SV_1",
				RequestType: "Invite", LinkExpiration: distributionExp}}, now); err != nil {
				return err
			}
			b, err := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
			if err != nil {
				return err
			}
			if err := b.AddHistory(ctx, []store.HistoryInput{{ContactID: "CID_1", Status: "Success", SentAt: now}}); err != nil {
				return err
			}
			if err := b.AddLinks(ctx, []store.LinkInput{{ContactID: "CID_1", Email: email, Link: "https://x/jfe/form/SV_1",
				LinkExpiration: linkExp}}); err != nil {
				return err
			}
			_, err = b.Merge(ctx, now, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expiry := func(at time.Time) *time.Time {
		t.Helper()
		got, err := s.MyActiveSurveys(ctx, email, at)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(got) == 0:
			return nil
		case got[0].ExpiresAt == nil:
			t.Fatalf("listed with no expiry at %v", at)
		}
		return got[0].ExpiresAt
	}

	sync(recipientExp, distExp)
	if e := expiry(now); e == nil || !e.Equal(recipientExp) {
		t.Fatalf("expiry %v, want the link's %v", e, recipientExp)
	}
	// The next sync reads neither expiry.
	sync(time.Time{}, time.Time{})
	if e := expiry(now); e == nil || !e.Equal(recipientExp) {
		t.Fatalf("after a sync without readable expiries: expiry %v, want the link's %v as read before", e, recipientExp)
	}
	if e := expiry(recipientExp.Add(time.Minute)); e != nil {
		t.Fatalf("still listed after the link expired (expiry %v)", e)
	}
	d, err := s.ListStoredDistributions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0].LinkExpiration.IsZero() || !d[0].LinkExpiration.Equal(distExp) {
		t.Fatalf("distribution expiry %+v, want %v as read before", d, distExp)
	}
	// A readable new expiry still replaces the old one (links extended).
	later := now.Add(96 * time.Hour)
	sync(later, later)
	if e := expiry(now); e == nil || !e.Equal(later) {
		t.Fatalf("expiry %v, want the extended %v", e, later)
	}
}
