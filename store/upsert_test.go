package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"pgregory.net/rapid"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func newIntegration(t interface{ Fatal(...any) }, s *store.Store) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	_, err := s.CreateIntegration(context.Background(), store.Integration{
		ID: id, Name: "t", BaseURL: "https://iad1.qualtrics.com/API/v3/", AuthMethod: "token",
		SecretSealed: []byte{1}, SecretKeyID: "k", RequestsPerMinute: 1500, RequestTimeoutSeconds: 10,
		Schedule: microapps.DefaultSchedule, Status: "active",
	}, store.AuditEvent{Actor: "test", Action: "create"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// pagesOf splits items into pages of the given sizes (cycled).
func pagesOf[T any](items []T, sizes []int) [][]T {
	var out [][]T
	for i, k := 0, 0; i < len(items); k++ {
		n := min(sizes[k%len(sizes)], len(items)-i)
		out = append(out, items[i:i+n])
		i += n
	}
	return out
}

// deliveries draws an order in which pages arrive: every page at least once,
// some twice, shuffled, the way a resumed run or an API that repeats items
// hands them over.
func deliveries(t *rapid.T, pages int) []int {
	order := make([]int, 0, pages*2)
	for i := range pages {
		order = append(order, i)
		if rapid.Bool().Draw(t, "repeat"+strconv.Itoa(i)) {
			order = append(order, i)
		}
	}
	return rapid.Permutation(order).Draw(t, "order")
}

func TestSurveyAndDistributionUpsertsDoNotDependOnPageOrderOrRepetition(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(t *rapid.T) {
		id := newIntegration(t, s)
		n := rapid.IntRange(1, 25).Draw(t, "surveys")
		surveys := make([]store.SurveyInput, n)
		dists := make([]store.DistributionInput, n)
		for i := range surveys {
			sid := fmt.Sprintf("SV_%03d", i)
			surveys[i] = store.SurveyInput{ID: sid, Name: "S" + strconv.Itoa(i), IsActive: rapid.Bool().Draw(t, "active"),
				LastModified: base.Add(time.Duration(i) * time.Hour)}
			dists[i] = store.DistributionInput{ID: fmt.Sprintf("EMD_%03d", i), SurveyID: sid, RequestType: "Invite",
				Stats: store.DistributionStats{Sent: rapid.IntRange(0, 50).Draw(t, "sent")}}
		}
		sizes := rapid.SliceOfN(rapid.IntRange(1, 7), 1, 4).Draw(t, "pageSizes")
		sp, dp := pagesOf(surveys, sizes), pagesOf(dists, sizes)
		// A first run is killed after some pages; the second reads them all
		// again, in another order, with repeats.
		killedAfter := rapid.IntRange(0, len(sp)).Draw(t, "killedAfter")
		var changes []store.Change
		now := base.Add(24 * time.Hour)
		apply := func(order []int, limit int) {
			for k, p := range order {
				if k >= limit {
					return
				}
				now = now.Add(time.Second)
				sr, err := s.UpsertSurveys(ctx, id, sp[p], now)
				if err != nil {
					t.Fatal(err)
				}
				dr, err := s.UpsertDistributions(ctx, id, dp[p], now)
				if err != nil {
					t.Fatal(err)
				}
				changes = append(append(changes, sr.Changes...), dr.Changes...)
			}
		}
		apply(deliveries(t, len(sp)), killedAfter)
		apply(deliveries(t, len(sp)), len(sp)*2)

		news := map[string]int{}
		for _, c := range changes {
			news[c.Kind]++
		}
		if news[store.ChangeSurveyNew] != n || news[store.ChangeDistributionNew] != n || len(changes) != 2*n {
			t.Fatalf("changes %v over %d surveys: each must be new exactly once and nothing else", news, n)
		}
		got, err := s.ListStoredSurveys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d surveys stored, want %d", len(got), n)
		}
		for i, g := range got {
			w := surveys[i]
			if g.SurveyInput.ID != w.ID || g.Name != w.Name || g.IsActive != w.IsActive || !g.LastModified.Equal(w.LastModified) {
				t.Fatalf("stored %+v, want %+v", g.SurveyInput, w)
			}
		}
		gd, err := s.ListStoredDistributions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range gd {
			if g.ID != dists[i].ID || g.Stats != dists[i].Stats || g.Snapshots != 1 {
				t.Fatalf("stored %+v, want %+v and one stats snapshot", g, dists[i])
			}
		}
	})
}

func TestRecipientMergeDoesNotDependOnPageOrderOrRepetition(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	statuses := []string{"Pending", "Success", "Opened", "SurveyStarted", "SurveyFinished", "HardBounce", ""}
	rapid.Check(t, func(t *rapid.T) {
		id := newIntegration(t, s)
		now := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
		if _, err := s.UpsertDistributions(ctx, id, []store.DistributionInput{{ID: "EMD_1", SurveyID: "SV_1", RequestType: "Invite"}}, now); err != nil {
			t.Fatal(err)
		}
		n := rapid.IntRange(1, 40).Draw(t, "recipients")
		history := make([]store.HistoryInput, n)
		links := make([]store.LinkInput, n)
		for i := range n {
			cid := fmt.Sprintf("CID_%03d", i)
			history[i] = store.HistoryInput{ContactID: cid, ContactLookupID: "MLRP_" + cid,
				Status: rapid.SampledFrom(statuses).Draw(t, "status")}
			links[i] = store.LinkInput{ContactID: cid, Email: rapid.SampledFrom([]string{" A@X.example ", "b@x.example", "C@x.EXAMPLE"}).Draw(t, "email"),
				Link: "https://x.example/jfe/form/SV_1?Q_DL=" + cid}
		}
		// Small batches merge from memory, large ones from staging tables, and
		// a batch can move to staging part-way: all three must agree.
		defer store.SetMemRecipientRows(rapid.SampledFrom([]int{0, 5, 1000}).Draw(t, "memRows"))()
		// History and links come in different page sizes, as they do.
		hp := pagesOf(history, rapid.SliceOfN(rapid.IntRange(1, 9), 1, 3).Draw(t, "historyPages"))
		lp := pagesOf(links, rapid.SliceOfN(rapid.IntRange(1, 9), 1, 3).Draw(t, "linkPages"))
		merge := func() []store.Change {
			var changes []store.Change
			err := s.WithTx(ctx, func(tx pgx.Tx) error {
				b, err := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
				if err != nil {
					return err
				}
				for _, p := range deliveries(t, len(hp)) {
					if err := b.AddHistory(ctx, hp[p]); err != nil {
						return err
					}
				}
				for _, p := range deliveries(t, len(lp)) {
					if err := b.AddLinks(ctx, lp[p]); err != nil {
						return err
					}
				}
				_, err = b.Merge(ctx, now, func(c []store.Change) error { changes = append(changes, c...); return nil })
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return changes
		}
		first := merge()
		delivered := 0
		for _, h := range history {
			if store.Reached(h.Status) { // a bounce or a pending send reached no one
				delivered++
			}
		}
		if len(first) != delivered {
			t.Fatalf("first merge reported %d changes, want %d deliveries: %v", len(first), delivered, first)
		}
		now = now.Add(time.Minute)
		if again := merge(); len(again) != 0 {
			t.Fatalf("merging the same recipients again reported %v", again)
		}
		got, err := s.ListStoredRecipients(ctx, id, "EMD_1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d recipients stored, want %d", len(got), n)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].ContactID < got[j].ContactID })
		for i, g := range got {
			want := links[i].Email
			want = normalise(want)
			if g.Status != history[i].Status || g.Email != want || g.RespondLink != links[i].Link || g.DeletedAt != nil {
				t.Fatalf("stored %+v, want status %q email %q", g, history[i].Status, want)
			}
		}
	})
}

func normalise(s string) string {
	b := []byte{}
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}
