package events_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

// BenchmarkEvents posts 10,000 signed completedResponse callbacks for 10,000
// recipients (spread over 20 distributions) from 16 concurrent posters to the
// receiver over HTTP, with a River client applying them, and reports the
// accept rate and the time from the first post until every event is applied.
// River works the queue with events.QueueConfig(), as a replica would.
//
//	go test -run '^$' -bench BenchmarkEvents -count 3 ./events/
func BenchmarkEvents(b *testing.B) {
	const (
		total   = 10000
		dists   = 20
		posters = 16
	)
	ctx := context.Background()
	e := newEnv(b, envOptions{river: true, maxConns: 32,
		options: events.Options{RatePerSecond: 1e6, Burst: 1e6}})
	in := e.addIntegration(simBrand("brandbench", "SV_bench", "EMD_bench0", time.Now()), true)
	key := e.sharedKey(in)
	err := e.store.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, sent)
			SELECT $1, 'EMD_b' || d, 'SV_bench', $2 FROM generate_series(0, $3 - 1) d`, in.ID, total/dists, dists); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO recipients (integration_id, distribution_id, contact_id, survey_id, status)
			SELECT $1, 'EMD_b' || (i % $3), 'CID_b' || i, 'SV_bench', 'Success' FROM generate_series(0, $2 - 1) i`, in.ID, total, dists)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: posters, MaxConnsPerHost: posters}}
	hook := e.hooks.URL + "/hooks/qualtrics/" + in.ID

	var acceptRates, applyTimes []float64
	iter := 0
	for b.Loop() {
		b.StopTimer()
		iter++
		if _, err := e.store.Pool().Exec(ctx, `UPDATE recipients SET status = 'Success', response_id = '', response_started_at = NULL,
			response_completed_at = NULL WHERE integration_id = $1`, in.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.Pool().Exec(ctx, `UPDATE distributions SET started = 0, finished = 0 WHERE integration_id = $1;`, in.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.Pool().Exec(ctx, `DELETE FROM qualtrics_events WHERE integration_id = $1`, in.ID); err != nil {
			b.Fatal(err)
		}
		bodies := make([]string, total)
		for i := range bodies {
			m := fmt.Sprintf(`{"SurveyID":"SV_bench","ResponseID":"R_%d_%d","RecipientID":"CID_b%d","DistributionID":"EMD_b%d","CompletedDate":"2026-11-28T12:00:00Z","BrandID":"brandbench","Status":"Complete"}`,
				iter, i, i, i%dists)
			bodies[i] = url.Values{"Topic": {"surveyengine.completedResponse.SV_bench"}, "MSG": {m},
				"HMAC": {qualtricssim.SignEvent(key, []byte(m))}}.Encode()
		}
		b.StartTimer()

		start := time.Now()
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range posters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					resp, err := client.Post(hook, "application/x-www-form-urlencoded", strings.NewReader(bodies[i]))
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		accepted := time.Since(start)
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d callbacks were not accepted", n)
		}
		appliedCount := func() int {
			return e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1 AND applied_at IS NOT NULL`, in.ID)
		}
		b.Logf("accepted in %v, %d applied by then", accepted, appliedCount())
		for deadline := time.Now().Add(2 * time.Minute); appliedCount() < total; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("not every event was applied within 2 minutes")
			}
		}
		applied := time.Since(start)
		b.StopTimer()
		if n := e.count(`SELECT count(*) FROM recipients WHERE integration_id = $1 AND status = 'SurveyFinished'`, in.ID); n != total {
			b.Fatalf("%d recipients finished, want %d", n, total)
		}
		acceptRates = append(acceptRates, total/accepted.Seconds())
		applyTimes = append(applyTimes, applied.Seconds())
		b.StartTimer()
	}
	b.ReportMetric(mean(acceptRates), "accepted/s")
	b.ReportMetric(mean(applyTimes), "s-to-all-applied")
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
