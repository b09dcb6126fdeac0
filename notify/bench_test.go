package notify_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/notify"
)

const feedSQL = `SELECT id, kind, data, created_at, read_at FROM notifications
	WHERE email = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 50`

// BenchmarkExpiryWindow raises survey_expiring for 100,000 recipients whose
// links enter the window at once (10 surveys, 100 distributions, loaded with
// COPY), then times the feed query of one user. Run it with -benchtime=5x:
// every iteration starts from an empty notifications table, and the figures
// reported are medians over the iterations.
func BenchmarkExpiryWindow(b *testing.B) {
	const recipients = 100_000
	f := newFixture(b)
	integ := f.integration(integrationRow{})
	exp := t0.Add(20 * time.Hour)
	for s := range 10 {
		f.survey(integ, surveyRow{ID: fmt.Sprintf("SV_%d", s)})
	}
	for d := range 100 {
		f.dist(integ, distRow{ID: fmt.Sprintf("EMD_%d", d), SurveyID: fmt.Sprintf("SV_%d", d%10)})
	}
	rows := make([][]any, recipients)
	for r := range recipients {
		d := r % 100
		rows[r] = []any{integ, fmt.Sprintf("EMD_%d", d), fmt.Sprintf("CID_%d", r), fmt.Sprintf("SV_%d", d%10),
			fmt.Sprintf("user%d@example.com", r), "Success", "https://acme.qualtrics.com/jfe/form/x?r=" + fmt.Sprint(r), exp}
	}
	if _, err := f.s.Pool().CopyFrom(f.ctx, pgx.Identifier{"recipients"},
		[]string{"integration_id", "distribution_id", "contact_id", "survey_id", "email", "status", "respond_link", "link_expiration"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	f.exec(`ANALYZE`)

	for _, variant := range []struct {
		name   string
		outbox bool
	}{{"feed-only", false}, {"with-email-outbox", true}} {
		b.Run(variant.name, func(b *testing.B) {
			n := notify.New(notify.Options{Store: f.s})
			if variant.outbox {
				n = notify.New(notify.Options{Store: f.s, Mailer: &fakeMailer{}, Jobs: insertOnlyRiver(b, f.s)})
			}
			var raise, feed []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f.exec(`TRUNCATE notifications, deliveries, river_job`)
				// Each iteration finds the whole window new again: what the
				// previous one settled is unsettled.
				f.exec(`UPDATE recipients SET expiry_settled_at = NULL WHERE expiry_settled_at IS NOT NULL`)
				b.StartTimer()
				start := time.Now()
				raised, err := n.CheckWindows(f.ctx, "", t0)
				if err != nil {
					b.Fatal(err)
				}
				raise = append(raise, time.Since(start))
				b.StopTimer()
				if raised != recipients {
					b.Fatalf("raised %d, want %d", raised, recipients)
				}
				f.exec(`ANALYZE notifications`)
				for q := range 50 {
					email := fmt.Sprintf("user%d@example.com", (q*7919+i)%recipients)
					start := time.Now()
					rows, err := f.s.Pool().Query(f.ctx, feedSQL, email, t0)
					if err != nil {
						b.Fatal(err)
					}
					rows.Close()
					if rows.Err() != nil {
						b.Fatal(rows.Err())
					}
					feed = append(feed, time.Since(start))
				}
				b.StartTimer()
			}
			b.StopTimer()
			plan := explain(b, f, "user42@example.com")
			if !strings.Contains(plan, "notifications_email_idx") {
				b.Fatalf("the feed query does not use notifications_email_idx:\n%s", plan)
			}
			mr, mf := median(raise), median(feed)
			b.ReportMetric(float64(recipients)/mr.Seconds(), "notifications/s")
			b.ReportMetric(float64(mr.Milliseconds()), "raise-ms")
			b.ReportMetric(float64(mf.Microseconds())/1000, "feed-ms")
			b.Logf("%s: median CheckWindows %v for %d (%.0f notifications/s); median feed query %v; plan:\n%s",
				variant.name, mr, recipients, float64(recipients)/mr.Seconds(), mf, plan)
		})
	}
}

func explain(b *testing.B, f *fixture, email string) string {
	rows, err := f.s.Pool().Query(f.ctx, `EXPLAIN (ANALYZE, COSTS OFF) `+feedSQL, email, t0)
	if err != nil {
		b.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
