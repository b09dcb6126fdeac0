package storetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/microapps/microapps/store"
)

// BenchUsers and BenchRecipients size the data LoadBenchData creates.
const (
	BenchUsers      = 20000
	BenchRecipients = 100000
)

// BenchEmail is the email of bench user i (0 ≤ i < BenchUsers).
func BenchEmail(i int) string { return fmt.Sprintf("user%05d@example.com", i) }

// LoadBenchData creates 4 integrations with 100 surveys each; every survey has
// an invitation and a reminder sent to 125 random users of 20,000:
// 100,000 recipient rows, loaded with COPY, for page benchmarks.
func LoadBenchData(b testing.TB, s *store.Store) {
	b.Helper()
	ctx := context.Background()
	const integrations, surveysPer, perDist = 4, 100, 125
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	benchExec(b, s, `INSERT INTO integrations (id, name, functional_group, base_url, secret_sealed, secret_key_id, last_success_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Integration ' || g, 'Group ' || g,
       'https://iad1.qualtrics.com/API/v3/', '\x00', 'k1', now()
FROM generate_series(1, $1) g`, integrations)
	benchExec(b, s, `INSERT INTO surveys (integration_id, qualtrics_id, name, is_active, end_date)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'SV_' || i || '_' || n, 'Survey ' || i || '/' || n,
       n % 10 <> 0, $3::timestamptz + (n % 30 + 1) * interval '1 day'
FROM generate_series(1, $1) i, generate_series(1, $2) n`, integrations, surveysPer, now)
	benchExec(b, s, `INSERT INTO distributions (integration_id, qualtrics_id, survey_id, parent_distribution_id, request_type, send_date, link_expiration)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'EMD_' || i || '_' || n || '_' || k, 'SV_' || i || '_' || n,
       CASE k WHEN 0 THEN '' ELSE 'EMD_' || i || '_' || n || '_0' END,
       CASE k WHEN 0 THEN 'Invite' ELSE 'Reminder' END,
       $3::timestamptz - (10 - k) * interval '1 day',
       CASE WHEN n % 7 = 0 THEN NULL ELSE $3::timestamptz + ((n % 20) - 2 + k) * interval '1 day' END
FROM generate_series(1, $1) i, generate_series(1, $2) n, generate_series(0, 1) k`, integrations, surveysPer, now)

	statuses := []string{"Success", "Opened", "SurveyStarted", "SurveyPartiallyFinished", "SurveyFinished"}
	rows := make([][]any, 0, BenchRecipients)
	for i := 1; i <= integrations; i++ {
		for n := 1; n <= surveysPer; n++ {
			users := rng.Perm(BenchUsers)[:perDist]
			for _, u := range users {
				st := statuses[rng.IntN(len(statuses))]
				for k := 0; k < 2; k++ {
					status := st
					if k == 1 && st != "SurveyFinished" {
						status = "Success"
					}
					rows = append(rows, []any{uuidOf(i), fmt.Sprintf("EMD_%d_%d_%d", i, n, k), fmt.Sprintf("CID_%d", u),
						fmt.Sprintf("SV_%d_%d", i, n), BenchEmail(u), status, now.Add(-time.Duration(10-k) * 24 * time.Hour),
						fmt.Sprintf("https://iad1.qualtrics.com/jfe/form/SV_%d_%d?Q_DL=%d", i, n, u)})
				}
			}
		}
	}
	start := time.Now()
	n, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"recipients"},
		[]string{"integration_id", "distribution_id", "contact_id", "survey_id", "email", "status", "sent_at", "respond_link"},
		pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
	if n != BenchRecipients {
		b.Fatalf("copied %d recipients, want %d", n, BenchRecipients)
	}
	benchExec(b, s, `ANALYZE`)
	b.Logf("loaded %d recipients for %d users in %s", n, BenchUsers, time.Since(start).Round(time.Millisecond))
}

func uuidOf(i int) pgtype.UUID {
	var u pgtype.UUID
	raw, _ := hex.DecodeString(fmt.Sprintf("00000000000040008000%012x", i))
	copy(u.Bytes[:], raw)
	u.Valid = true
	return u
}

func benchExec(t testing.TB, s *store.Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("bench data: %v\n%s", err, sql)
	}
}
