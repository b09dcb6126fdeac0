// Package synctest holds test helpers shared by the sync engine's tests and
// the reliability suite: comparing what a sync stored with the simulator's
// ground truth, and a fast Qualtrics client configuration.
package synctest

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
)

// FastClient makes retries quick and lifts the client's per-endpoint caps
// (history 300/min), which would only make tests wait.
func FastClient(c *qualtrics.Config) {
	c.BackoffBase, c.BackoffMax, c.MaxRetryAfter = time.Millisecond, 5*time.Millisecond, 10*time.Millisecond
	c.MaxAttempts = 8
	c.EndpointLimits = map[string]int{qualtrics.EndpointDistributionsHistory: 0, qualtrics.EndpointDistributionsLinks: 0}
}

// IsLive mirrors the sync's rule: history and links are read for these.
func IsLive(d qualtricssim.Distribution, now time.Time) bool {
	return d.RequestType != qualtricssim.RequestTestEmail && (d.LinkExpiration.IsZero() || d.LinkExpiration.After(now))
}

// MatchesSim compares every stored survey, distribution and recipient of an
// integration with the simulator's ground truth for a brand, field by field,
// and returns how many recipients it compared.
func MatchesSim(t testing.TB, st *store.Store, sim *qualtricssim.Server, brandID, integrationID string) int {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	surveys, err := st.ListStoredSurveys(ctx, integrationID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]store.StoredSurvey{}
	for _, s := range surveys {
		stored[s.SurveyInput.ID] = s
	}
	truth := sim.Surveys(brandID)
	if len(surveys) != len(truth) {
		t.Fatalf("stored %d surveys, the simulator holds %d", len(surveys), len(truth))
	}
	dists, err := st.ListStoredDistributions(ctx, integrationID)
	if err != nil {
		t.Fatal(err)
	}
	storedDists := map[string]store.StoredDistribution{}
	for _, d := range dists {
		storedDists[d.ID] = d
	}
	wantDists, recipients := 0, 0
	for _, sv := range truth {
		got, ok := stored[sv.ID]
		if !ok {
			t.Fatalf("survey %s missing", sv.ID)
		}
		if got.Name != sv.Name || got.IsActive != sv.IsActive || got.OwnerID != sv.OwnerID || got.DeletedAt != nil {
			t.Errorf("survey %s: stored %+v, want name %q active %v owner %s", sv.ID, got, sv.Name, sv.IsActive, sv.OwnerID)
		}
		if !got.LastModified.Equal(sv.LastModifiedDate.Truncate(time.Second)) || !got.CreationDate.Equal(sv.CreationDate.Truncate(time.Second)) {
			t.Errorf("survey %s: dates %v/%v, want %v/%v", sv.ID, got.CreationDate, got.LastModified, sv.CreationDate, sv.LastModifiedDate)
		}
		if !sv.IsActive {
			continue
		}
		if !got.EndDate.Equal(sv.EndDate) || got.ResponsesAuditable != sv.ResponseCounts.Auditable || got.DetailsSyncedAt == nil {
			t.Errorf("survey %s details: end %v auditable %d, want %v %d", sv.ID, got.EndDate, got.ResponsesAuditable, sv.EndDate, sv.ResponseCounts.Auditable)
		}
		for _, d := range sim.Distributions(sv.ID) {
			wantDists++
			gd, ok := storedDists[d.ID]
			if !ok {
				t.Fatalf("distribution %s of %s missing", d.ID, sv.ID)
			}
			if gd.SurveyID != sv.ID || gd.RequestType != d.RequestType || gd.ParentDistributionID != d.ParentDistributionID ||
				gd.Stats != store.DistributionStats(d.Stats) || !gd.LinkExpiration.Equal(d.LinkExpiration) || gd.Subject != d.Headers.Subject ||
				gd.DeletedAt != nil || gd.Snapshots < 1 {
				t.Errorf("distribution %s: stored %+v, want %+v", d.ID, gd, d)
			}
			recipients += checkRecipients(ctx, t, st, sim, integrationID, d, IsLive(d, now))
		}
	}
	activeDists := 0
	for _, d := range dists {
		if stored[d.SurveyID].IsActive {
			activeDists++
		}
	}
	if activeDists != wantDists {
		t.Errorf("stored %d distributions of active surveys, want %d", activeDists, wantDists)
	}
	return recipients
}

func checkRecipients(ctx context.Context, t testing.TB, st *store.Store, sim *qualtricssim.Server, integrationID string, d qualtricssim.Distribution, live bool) int {
	t.Helper()
	got, err := st.ListStoredRecipients(ctx, integrationID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !live {
		if len(got) != 0 {
			t.Errorf("distribution %s (%s, expires %v) is not live but has %d recipients", d.ID, d.RequestType, d.LinkExpiration, len(got))
		}
		return 0
	}
	want := sim.Recipients(d.ID)
	if len(got) != len(want) {
		t.Fatalf("distribution %s: %d recipients stored, simulator holds %d", d.ID, len(got), len(want))
	}
	byContact := map[string]store.StoredRecipient{}
	for _, r := range got {
		byContact[r.ContactID] = r
	}
	for _, w := range want {
		g, ok := byContact[w.ContactID]
		if !ok {
			t.Fatalf("recipient %s of %s missing", w.ContactID, d.ID)
		}
		email, _ := microapps.NormalizeEmail(w.Email) // "" for an address that is not ASCII, as the sync stores it
		if g.Email != email || g.Status != w.Status || g.RespondLink != w.Link || g.ContactLookupID != w.ContactLookupID ||
			g.FirstName != w.FirstName || g.LastName != w.LastName || g.SurveyID != d.SurveyID || g.ResponseID != w.ResponseID ||
			g.Unsubscribed != w.Unsubscribed || g.DeletedAt != nil {
			t.Errorf("recipient %s of %s: stored %+v, want %+v", w.ContactID, d.ID, g, w)
		}
		if (g.SentAt == nil) != w.SentAt.IsZero() || (g.SentAt != nil && !g.SentAt.Equal(w.SentAt)) {
			t.Errorf("recipient %s of %s: sentAt %v, want %v", w.ContactID, d.ID, g.SentAt, w.SentAt)
		}
	}
	return len(want)
}
