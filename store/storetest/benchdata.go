package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps/store"
)

// BenchUsers and BenchRecipients size the data LoadBenchData creates.
const (
	BenchUsers      = 20000
	BenchRecipients = 100000
)

// BenchEmail is the email of bench user i (0 ≤ i < BenchUsers).
func BenchEmail(i int) string { return ScaleEmail(i) }

// LoadBenchData creates 4 integrations with 200 surveys each; every survey
// has an invitation and a reminder sent to 125 random users of 20,000: about
// 100,000 recipient rows, for page benchmarks. It writes them the way the
// product does, through the store's own write path (LoadScale), and runs no
// ANALYZE of its own: the planner has what a first sync leaves it.
func LoadBenchData(b testing.TB, s *store.Store) {
	b.Helper()
	start := time.Now()
	sp := ScaleSpec{Recipients: BenchRecipients, Integrations: 4, PerUser: BenchRecipients / BenchUsers, PerSurvey: 125,
		NotifiedShare: 0.1, Workers: 4, Seed: 1}
	if err := LoadScale(context.Background(), s, sp, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded about %d recipients for %d users through the store's write path in %s", BenchRecipients, BenchUsers,
		time.Since(start).Round(time.Millisecond))
}
