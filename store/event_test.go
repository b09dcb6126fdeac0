package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

func addEventIntegration(t *testing.T, st *store.Store) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	err := st.WithTx(ctx, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, events_enabled) VALUES ($1, 'x', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', true)`,
			`INSERT INTO surveys (integration_id, qualtrics_id, is_active) VALUES ($1, 'SV_1', true)`,
			`INSERT INTO distributions (integration_id, qualtrics_id, survey_id, sent) VALUES ($1, 'EMD_1', 'SV_1', 10)`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		for i := range 10 {
			if _, err := tx.Exec(ctx, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, status)
				VALUES ($1, 'EMD_1', $2, 'SV_1', 'Success')`, id, fmt.Sprintf("CID_%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTheFirstEventsKeyStoredWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	id := addEventIntegration(t, st)
	first, err := st.SetEventsKeyIfMissing(ctx, id, "k1", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.SetEventsKeyIfMissing(ctx, id, "k2", []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Sealed) != "first" || string(second.Sealed) != "first" || second.KeyID != "k1" || !second.Enabled {
		t.Fatalf("first %+v, second %+v: want the first key kept", first, second)
	}
	n, err := st.ResealEventKeys(ctx, func(_, keyID string, sealed []byte) (string, []byte, error) {
		return "k3", append([]byte("re-"), sealed...), nil
	})
	if err != nil || n != 1 {
		t.Fatalf("resealed %d (%v), want 1", n, err)
	}
	if k, err := st.GetEventsKey(ctx, id); err != nil || k.KeyID != "k3" || string(k.Sealed) != "re-first" {
		t.Fatalf("after reseal %+v (%v)", k, err)
	}
	if _, err := st.GetEventsKey(ctx, uuid.NewString()); err == nil {
		t.Fatal("an unknown integration has a key")
	}
}

// Events of one recipient applied concurrently, in any order, leave it at
// the furthest status. The distribution's figures are Qualtrics' own: events
// leave them alone, so the next listing never contradicts them.
func TestConcurrentEventsOfOneRecipientMoveItOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	id := addEventIntegration(t, st)
	statuses := map[string]string{"started": "SurveyStarted", "partial": "SurveyPartiallyFinished", "completed": "SurveyFinished"}
	var ids []int64
	for i := range 10 {
		for topic := range statuses {
			err := st.WithTx(ctx, func(tx pgx.Tx) error {
				evID, ok, err := st.InsertEventTx(ctx, tx, store.QualtricsEvent{IntegrationID: id, Topic: topic, SurveyID: "SV_1",
					ResponseID: fmt.Sprintf("R_%d", i), RecipientID: fmt.Sprintf("CID_%d", i), DistributionID: "EMD_1", ReceivedAt: time.Now()})
				if ok {
					ids = append(ids, evID)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	effect := func(ev store.QualtricsEvent) store.EventEffect {
		return store.EventEffect{RecipientStatus: statuses[ev.Topic]}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids)*2)
	for _, evID := range append(ids, ids...) { // every event twice, at once
		wg.Go(func() {
			if _, err := st.ApplyEvent(ctx, evID, time.Now(), effect); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var started, finished, done int
	if err := st.Pool().QueryRow(ctx, `SELECT started, finished FROM distributions WHERE integration_id = $1`, id).Scan(&started, &finished); err != nil {
		t.Fatal(err)
	}
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM recipients WHERE integration_id = $1 AND status = 'SurveyFinished'`, id).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if started != 0 || finished != 0 || done != 10 {
		t.Fatalf("started %d finished %d, %d recipients finished; want 0, 0 (figures untouched), 10", started, finished, done)
	}
	if out, err := st.ApplyEvent(ctx, ids[0], time.Now(), effect); err != nil || out != store.EventAlreadyApplied {
		t.Fatalf("applying an applied event again: %v (%v), want already applied", out, err)
	}
	if out, err := st.ApplyEvent(ctx, 1<<40, time.Now(), effect); err != nil || out != store.EventMissing {
		t.Fatalf("applying a missing event: %v (%v), want missing", out, err)
	}
}
