package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/microapps/microapps/notify"
)

// crowd makes recipients recipients and dists distributions of one survey,
// everything expiring 20 h after now, and two Brand Admins: a check at now
// raises recipients + 2×dists notifications.
func crowd(f *fixture, now time.Time, recipients, dists int) string {
	f.t.Helper()
	integ := f.integration(integrationRow{Admins: []string{"boss@example.com", "chief@example.com"}, WebhookURL: "http://127.0.0.1:1/hook"})
	exp := now.Add(20 * time.Hour)
	f.survey(integ, surveyRow{ID: "SV_1"})
	for d := range dists {
		f.dist(integ, distRow{ID: fmt.Sprintf("EMD_%d", d), SurveyID: "SV_1", LinkExpiration: &exp})
	}
	for r := range recipients {
		f.recip(integ, recipRow{Dist: fmt.Sprintf("EMD_%d", r%dists), Contact: fmt.Sprintf("CID_%d", r), Survey: "SV_1",
			Email: fmt.Sprintf("user%d@example.com", r)})
	}
	return integ
}

func TestConcurrentChecksRaiseEachNotificationOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	crowd(f, t0, 200, 5)
	want := 200 + 2*5

	// Four replicas' checks at once, each in its own transaction.
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	start := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := notify.New(notify.Options{Store: f.s, Mailer: &fakeMailer{}, Jobs: insertOnlyRiver(t, f.s)})
			<-start
			raised, err := n.CheckWindows(f.ctx, "", t0.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += raised
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if total != want {
		t.Fatalf("the checks together reported %d raised, want %d", total, want)
	}
	if c := f.count(`SELECT count(*) FROM notifications`); c != want {
		t.Fatalf("%d notifications, want %d", c, want)
	}
	// email + webhook for each, each with its one job.
	if c := f.count(`SELECT count(*) FROM deliveries`); c != 2*want {
		t.Fatalf("%d deliveries, want %d", c, 2*want)
	}
	if c := f.count(`SELECT count(*) FROM river_job WHERE kind = 'deliver'`); c != 2*want {
		t.Fatalf("%d deliver jobs, want %d", c, 2*want)
	}
}

func TestTwoRiverClientsRunningTheCheckAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now()
	crowd(f, now, 100, 4)
	want := 100 + 2*4

	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	var clients []*river.Client[pgx.Tx]
	var events []<-chan *river.Event
	for range 2 {
		workers := river.NewWorkers()
		c, err := river.NewClient(riverpgxv5.New(f.s.Pool()), &river.Config{
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
			Workers:           workers,
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
			FetchPollInterval: 50 * time.Millisecond,
			FetchCooldown:     10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		n := notify.New(notify.Options{Store: f.s, Jobs: c})
		n.Register(workers)
		ev, cancelEv := c.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
		t.Cleanup(cancelEv)
		clients, events = append(clients, c), append(events, ev)
	}
	// Enqueue the checks before starting, so both clients find work at once.
	for _, c := range clients {
		if _, err := c.InsertMany(ctx, []river.InsertManyParams{{Args: notify.CheckArgs{}}, {Args: notify.CheckArgs{}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	completed := map[int64]bool{}
	for len(completed) < 4 {
		select {
		case ev := <-events[0]:
			if ev.Job.Kind != "notify_check" {
				continue // deliveries to the closed port fail, as they may
			}
			if ev.Kind != river.EventKindJobCompleted {
				t.Fatalf("check job %s: %v", ev.Kind, ev.Job.Errors)
			}
			completed[ev.Job.ID] = true
		case ev := <-events[1]:
			if ev.Job.Kind != "notify_check" {
				continue // deliveries to the closed port fail, as they may
			}
			if ev.Kind != river.EventKindJobCompleted {
				t.Fatalf("check job %s: %v", ev.Kind, ev.Job.Errors)
			}
			completed[ev.Job.ID] = true
		case <-ctx.Done():
			t.Fatalf("only %d of 4 checks completed", len(completed))
		}
	}
	if c := f.count(`SELECT count(*) FROM notifications`); c != want {
		t.Fatalf("%d notifications, want %d", c, want)
	}
	if c := f.count(`SELECT count(DISTINCT dedupe_key) FROM notifications`); c != want {
		t.Fatalf("%d distinct keys, want %d", c, want)
	}
	if c := f.count(`SELECT count(*) FROM deliveries WHERE channel = 'webhook'`); c != want {
		t.Fatalf("%d webhook deliveries, want one per notification (%d)", c, want)
	}
}

func TestPeriodicCheckJob(t *testing.T) {
	t.Parallel()
	n := notify.New(notify.Options{})
	jobs := n.PeriodicJobs()
	if len(jobs) != 1 {
		t.Fatalf("%d periodic jobs", len(jobs))
	}
	if (notify.CheckArgs{}).Kind() != "notify_check" || (notify.DeliverArgs{}).Kind() != "deliver" {
		t.Fatal("job kinds changed")
	}
}
