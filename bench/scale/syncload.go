package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// syncOptions is the brand synced while the pages are measured.
type syncOptions struct {
	recipients int
	surveys    int
}

// brandSyncs is a brand's first full sync, run again under a new
// integration each time one finishes, through the replica's own syncer
// (notifier and after-sync work included) against the simulator, which
// enforces Qualtrics' limits: the write load of a new large customer at the
// pace Qualtrics allows, not a writer running flat out.
type brandSyncs struct {
	b      *bench
	o      syncOptions
	sim    *qualtricssim.Server
	cancel context.CancelFunc
	done   chan error
	start  time.Time

	mu   sync.Mutex
	ids  []string
	runs []finishedSync
}

type finishedSync struct {
	recipients, calls int
	seconds, floor    float64
}

func (b *bench) startSyncs(srv *server, o syncOptions) (*brandSyncs, error) {
	genStart := time.Now()
	brand := qualtricssim.Generate(30, qualtricssim.Spec{Surveys: o.surveys, Recipients: o.recipients})
	// Qualtrics' limits in real time, as serve's syncer budgets them.
	limits := qualtricssim.DefaultLimits()
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &limits})
	brandID, token := brand.ID, brand.Users[0].Tokens[0]
	hs := httptest.NewServer(sim)
	fmt.Fprintf(os.Stderr, "simulator: brand of %d recipients, %d surveys generated in %s\n", o.recipients, o.surveys, time.Since(genStart).Round(time.Millisecond))
	sy := srv.replica.Syncer()
	ctx, cancel := context.WithCancel(b.ctx)
	s := &brandSyncs{b: b, o: o, sim: sim, cancel: cancel, done: make(chan error, 1), start: time.Now()}
	first := make(chan string, 1)
	go func() {
		defer hs.Close()
		for ctx.Err() == nil {
			id, runID, err := b.newSyncedIntegration(srv.keyring, hs.URL, token, brandID)
			if err != nil {
				s.done <- err
				return
			}
			s.mu.Lock()
			s.ids = append(s.ids, id)
			s.mu.Unlock()
			select {
			case first <- id:
			default:
			}
			t0 := time.Now()
			run, err := sy.RunNow(ctx, id, runID)
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				s.done <- fmt.Errorf("sync: %w", err)
				return
			}
			if run.Status != "succeeded" {
				s.done <- fmt.Errorf("sync: %s %q", run.Status, run.Error)
				return
			}
			s.mu.Lock()
			s.runs = append(s.runs, finishedSync{recipients: run.Recipients, calls: run.APICalls,
				seconds: time.Since(t0).Seconds(), floor: rateFloor(run.APICallsByEndpoint, run.APICalls)})
			s.mu.Unlock()
		}
		s.done <- nil
	}()
	// Measure once the sync writes recipients, not while it lists surveys.
	id := <-first
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int64
		if err := b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM (SELECT 1 FROM recipients WHERE integration_id = $1 LIMIT 1) x`, id).Scan(&n); err != nil {
			cancel()
			return nil, err
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, errors.New("sync: no recipient written after 2 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "sync: writing recipients %s after it began\n", time.Since(s.start).Round(time.Second))
	return s, nil
}

// stop ends the sync under way, removes the integrations the syncs created
// (so a kept database stays as it was loaded) and describes what ran.
func (s *brandSyncs) stop() (string, error) {
	took := time.Since(s.start)
	s.cancel()
	if err := <-s.done; err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := fmt.Sprintf("(meanwhile: a first full sync of a %d-recipient, %d-survey brand through serve's syncer against the simulator at Qualtrics' limits, started again under a new integration as each finished; %d finished in the %s measured",
		s.o.recipients, s.o.surveys, len(s.runs), took.Round(time.Second))
	for _, r := range s.runs {
		rep += fmt.Sprintf("; %d recipients, %d calls in %.0f s against a floor of %.0f s (%.2f×)", r.recipients, r.calls, r.seconds, r.floor, r.seconds/r.floor)
	}
	rep += fmt.Sprintf("; the simulator answered %d calls, %d of them 429)", s.sim.TotalCalls(), s.sim.Throttled())
	for _, id := range s.ids {
		if _, err := s.b.st.DeleteIntegration(s.b.ctx, id, store.AuditEvent{Actor: "scale", Action: "integration.delete"}); err != nil {
			return "", fmt.Errorf("remove a synced integration: %w", err)
		}
		if _, err := s.b.st.RemoveDeletedIntegration(s.b.ctx, id); err != nil {
			return "", fmt.Errorf("remove a synced integration: %w", err)
		}
	}
	return rep, nil
}

// newSyncedIntegration stores an integration of the simulator's brand, its
// token sealed under kr, with a first full sync queued.
func (b *bench) newSyncedIntegration(kr *seal.Keyring, simURL, token, brandID string) (string, int64, error) {
	id := uuid.NewString()
	keyID, sealed, err := seal.SealSecret(kr, seal.Credential, id, []byte(token))
	if err != nil {
		return "", 0, err
	}
	if _, err := b.st.CreateIntegration(b.ctx, store.Integration{ID: id, Name: "scale sync " + id[:8], BaseURL: simURL + "/API/v3/",
		AuthMethod: microapps.AuthToken, SecretSealed: sealed, SecretKeyID: keyID, RequestsPerMinute: 1500, RequestTimeoutSeconds: 60,
		Schedule: microapps.DefaultSchedule, Status: microapps.IntegrationActive, BrandID: brandID},
		store.AuditEvent{Actor: "scale", Action: "integration.create"}); err != nil {
		return "", 0, fmt.Errorf("create integration: %w", err)
	}
	var runID int64
	err = b.st.WithTx(b.ctx, func(tx pgx.Tx) error {
		run, _, err := b.st.QueueSyncRunTx(b.ctx, tx, id, microapps.SyncFull, "scale")
		runID = run.ID
		return err
	})
	return id, runID, err
}

// rateFloor is the shortest time, in seconds, Qualtrics' limits allow for
// the calls of a run (syncer's LargeBrand benchmark computes it the same way).
func rateFloor(byEndpoint map[string]int, total int) float64 {
	return 60 * math.Max(float64(total)/3000, math.Max(float64(byEndpoint[qualtrics.EndpointDistributionsHistory])/300,
		float64(byEndpoint[qualtrics.EndpointDistributionsLinks])/500))
}
