package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// HealthRank orders the console's health page: what needs an operator first.
type HealthRank int

const (
	HealthError   HealthRank = iota // the integration is in error (its credential)
	HealthFailing                   // its last sync failed, or it never succeeded
	HealthStale                     // no success for two full-sync periods
	HealthPaused                    // paused by an admin
	HealthFine
)

// HealthRow is one integration on the health page.
type HealthRow struct {
	ID, Name, FunctionalGroup, Icon string
	Status                          microapps.IntegrationStatus
	StatusMessage                   string
	LastSuccessAt                   *time.Time
	Rank                            HealthRank
	LastRun                         *SyncRun
}

// BrandBudget is one of a brand's shared rate buckets as the last call left
// it: the share of its rate it runs at after 429s (1 = the whole rate; it
// recovers at a pace the syncer's settings say), and the wait a 429 set.
type BrandBudget struct {
	BrandKey, Endpoint string
	Share              float64
	ShareAt            *time.Time
	BlockedUntil       *time.Time
	Throttled          int // 429s that lowered it
}

// HealthView is what the health page shows.
type HealthView struct {
	Rows  []HealthRow
	Total int // integrations, for the pager
	// OutboxOldest is, per channel, when its oldest undelivered notice was created.
	OutboxOldest map[microapps.Channel]time.Time
	// Jobs counts River's jobs still to run, by queue and state.
	Jobs    map[string]map[string]int64
	Budgets []BrandBudget
}

// healthRowsSQL ranks every integration from its own columns (no run is
// read to sort), failing ones first, and returns one page.
const healthRowsSQL = `SELECT id::text, name, functional_group, icon, status, status_message, last_success_at,
	CASE WHEN status = 'error' THEN 0
	     WHEN status = 'active' AND (last_success_at IS NULL OR last_sync_at > last_success_at) THEN 1
	     WHEN status = 'active' AND last_success_at < $1::timestamptz - 2 * full_sync_every THEN 2
	     WHEN status = 'paused' THEN 3 ELSE 4 END AS rank,
	count(*) OVER ()
	FROM integrations WHERE deleted_at IS NULL
	ORDER BY rank, lower(name), id LIMIT $2 OFFSET $3`

// healthJobsSQL counts the jobs still to run (River keeps finished ones a
// while; they are not counted).
const healthJobsSQL = `SELECT queue, state::text, count(*) FROM river_job
	WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY queue, state`

const healthBudgetsSQL = `SELECT brand_key, endpoint, factor, factor_at, blocked_until, throttled
	FROM rate_buckets WHERE factor < 1 OR blocked_until > $1 OR throttled > 0 ORDER BY brand_key, endpoint`

// Health reads the health page in two round trips: a batch of the page of
// integrations, the outbox, River's queues and the brands' budgets, then
// the page's newest runs.
func (s *Store) Health(ctx context.Context, now time.Time, limit, offset int) (HealthView, error) {
	v := HealthView{OutboxOldest: map[microapps.Channel]time.Time{}, Jobs: map[string]map[string]int64{}}
	b := &pgx.Batch{}
	b.Queue(healthRowsSQL, now, limit, max(offset, 0)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r HealthRow
			if err := rows.Scan(&r.ID, &r.Name, &r.FunctionalGroup, &r.Icon, &r.Status, &r.StatusMessage, &r.LastSuccessAt,
				&r.Rank, &v.Total); err != nil {
				return err
			}
			v.Rows = append(v.Rows, r)
		}
		return rows.Err()
	})
	b.Queue(outboxOldestSQL, microapps.Channels).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ch microapps.Channel
			var at *time.Time
			if err := rows.Scan(&ch, &at); err != nil {
				return err
			}
			if at != nil {
				v.OutboxOldest[ch] = *at
			}
		}
		return rows.Err()
	})
	b.Queue(healthJobsSQL).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var queue, state string
			var n int64
			if err := rows.Scan(&queue, &state, &n); err != nil {
				return err
			}
			if v.Jobs[queue] == nil {
				v.Jobs[queue] = map[string]int64{}
			}
			v.Jobs[queue][state] = n
		}
		return rows.Err()
	})
	b.Queue(healthBudgetsSQL, now).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var bb BrandBudget
			if err := rows.Scan(&bb.BrandKey, &bb.Endpoint, &bb.Share, &bb.ShareAt, &bb.BlockedUntil, &bb.Throttled); err != nil {
				return err
			}
			v.Budgets = append(v.Budgets, bb)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return v, mapErr("health", err)
	}
	ids := make([]string, len(v.Rows))
	for i, r := range v.Rows {
		ids[i] = r.ID
	}
	runs, err := s.newestRuns(ctx, ids)
	for i := range v.Rows {
		v.Rows[i].LastRun = runs[v.Rows[i].ID]
	}
	return v, err
}
