package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Recipients no longer listed are marked deleted by the same Merge, and come
// back when they are listed again.
func TestMergeMarksUnlistedRecipientsDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	merge := func(contacts ...string) store.RecipientMerge {
		t.Helper()
		var m store.RecipientMerge
		err := s.WithTx(ctx, func(tx pgx.Tx) error {
			b, err := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
			if err != nil {
				return err
			}
			h := make([]store.HistoryInput, len(contacts))
			for i, c := range contacts {
				h[i] = store.HistoryInput{ContactID: c, Status: "Success"}
			}
			if err := b.AddHistory(ctx, h); err != nil {
				return err
			}
			m, err = b.Merge(ctx, now, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	deleted := func() map[string]bool {
		got, err := s.ListStoredRecipients(ctx, id, "EMD_1")
		if err != nil {
			t.Fatal(err)
		}
		d := map[string]bool{}
		for _, g := range got {
			d[g.ContactID] = g.DeletedAt != nil
		}
		return d
	}
	if m := merge("a", "b", "c"); m.Recipients != 3 || m.Changed != 3 || m.Deleted != 0 {
		t.Fatalf("first merge %+v", m)
	}
	now = now.Add(time.Minute)
	if m := merge("a", "c"); m.Recipients != 2 || m.Changed != 0 || m.Deleted != 1 {
		t.Fatalf("second merge %+v", m)
	}
	if d := deleted(); len(d) != 3 || d["a"] || !d["b"] || d["c"] {
		t.Fatalf("deleted %v", d)
	}
	now = now.Add(time.Minute)
	if m := merge("a", "b"); m.Recipients != 2 || m.Changed != 1 || m.Deleted != 1 {
		t.Fatalf("third merge %+v", m)
	}
	if d := deleted(); len(d) != 3 || d["a"] || d["b"] || !d["c"] {
		t.Fatalf("deleted %v", d)
	}
}

// Changes come in chunks of at most 1000, in contact order, each once.
func TestMergeReportsChangesInChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	id := newIntegration(t, s)
	const n = 2345
	var sizes []int
	var seen []string
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		b, err := store.BeginRecipientsTx(ctx, tx, id, "EMD_1", "SV_1")
		if err != nil {
			return err
		}
		h := make([]store.HistoryInput, n)
		for i := range h {
			h[i] = store.HistoryInput{ContactID: fmt.Sprintf("CID_%05d", (i*7919)%n), Status: "Success"}
		}
		if err := b.AddHistory(ctx, h); err != nil {
			return err
		}
		m, err := b.Merge(ctx, time.Now(), func(ch []store.Change) error {
			sizes = append(sizes, len(ch))
			for _, c := range ch {
				if c.Kind != "recipient_delivered" || c.SurveyID != "SV_1" || c.DistributionID != "EMD_1" {
					return fmt.Errorf("change %+v", c)
				}
				seen = append(seen, c.ContactID)
			}
			return nil
		})
		if err == nil && (m.Changes != n || m.Recipients != n) {
			err = fmt.Errorf("merge %+v", m)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[1000 1000 345]" {
		t.Fatalf("chunks %v", sizes)
	}
	for i, c := range seen {
		if c != fmt.Sprintf("CID_%05d", i) {
			t.Fatalf("change %d is %s", i, c)
		}
	}
}
