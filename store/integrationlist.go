package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// IntegrationQuery selects one page of integrations for an admin's list. Its
// cost follows the page, not the fleet: two statements whatever the number
// of integrations (the page, then its newest runs).
type IntegrationQuery struct {
	Status microapps.IntegrationStatus // "", or only integrations with this status
	Search string                      // case-insensitive substring of the name or functional group
	Limit  int                         // rows on the page (at least 1)

	// ByName orders by name (case-insensitive) then id and pages by Offset,
	// for the console's numbered pages; otherwise the order is creation then
	// id, paged by After, for the API's cursors.
	ByName bool
	Offset int
	After  *IntegrationCursor

	// WithCounts fills each item's Counts and the page's Total.
	WithCounts bool
}

// IntegrationCursor is the last row of a page in creation order.
type IntegrationCursor struct {
	CreatedAt time.Time
	ID        string
}

// IntegrationCounts is what the console's list shows of an integration's data.
type IntegrationCounts struct {
	ActiveSurveys int // active, not deleted
	Recipients    int // invitations sent by its distributions still listed (Qualtrics' "sent" figures)
}

// IntegrationListItem is one integration of a page with what the lists show
// beside it.
type IntegrationListItem struct {
	Integration
	LastRun *SyncRun
	Counts  IntegrationCounts
}

// IntegrationPage is one page of integrations.
type IntegrationPage struct {
	Items []IntegrationListItem
	// Next is the cursor of the next page in creation order (nil on the last).
	Next *IntegrationCursor
	// Total counts every integration the query matches (WithCounts only).
	Total int
}

// ListIntegrationsPage returns one page of integrations with their newest run.
func (s *Store) ListIntegrationsPage(ctx context.Context, q IntegrationQuery) (IntegrationPage, error) {
	if q.Limit < 1 {
		return IntegrationPage{}, fmt.Errorf("store: list integrations: limit %d", q.Limit)
	}
	where := []string{"deleted_at IS NULL"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(q.Status))
	}
	if q.Search != "" {
		p := arg("%" + escapeLike(q.Search) + "%")
		where = append(where, "(name ILIKE "+p+" OR functional_group ILIKE "+p+")")
	}
	order, outer := "created_at, id", "p.page_created, p.page_id"
	if q.ByName {
		order, outer = "lower(name), id", "p.page_name, p.page_id"
	} else if q.After != nil {
		where = append(where, "(created_at, id) > ("+arg(q.After.CreatedAt)+", "+arg(q.After.ID)+"::uuid)")
	}
	total, counts := "0", "0, 0"
	if q.WithCounts {
		// Counted over the matches only when asked: the console shows page
		// numbers, the API a cursor.
		total = "count(*) OVER ()"
		counts = `(SELECT count(*) FROM surveys sv WHERE sv.integration_id = i.id AND sv.is_active AND sv.deleted_at IS NULL),
	    coalesce((SELECT sum(d.sent) FROM distributions d WHERE d.integration_id = i.id AND d.deleted_at IS NULL
	              AND d.request_type <> 'TestEmail'), 0)::bigint`
	}
	sql := `SELECT ` + integrationColumns + `, ` + counts + `, p.page_total
	FROM (SELECT id AS page_id, ` + total + ` AS page_total, created_at AS page_created, lower(name) AS page_name
	      FROM integrations WHERE ` + strings.Join(where, " AND ") + `
	      ORDER BY ` + order + ` LIMIT ` + arg(q.Limit+1) + ` OFFSET ` + arg(max(q.Offset, 0)) + `) p
	JOIN integrations i ON i.id = p.page_id
	ORDER BY ` + outer
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return IntegrationPage{}, mapErr("list integrations", err)
	}
	var page IntegrationPage
	page.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntegrationListItem, error) {
		var it IntegrationListItem
		err := scanIntegrationInto(r, &it.Integration, &it.Counts.ActiveSurveys, &it.Counts.Recipients, &page.Total)
		return it, err
	})
	if err != nil {
		return IntegrationPage{}, mapErr("list integrations", err)
	}
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
		if !q.ByName {
			last := page.Items[q.Limit-1]
			page.Next = &IntegrationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
	}
	if len(page.Items) == 0 {
		return page, nil
	}
	ids := make([]string, len(page.Items))
	for i, it := range page.Items {
		ids[i] = it.ID
	}
	runs, err := s.newestRuns(ctx, ids)
	for i := range page.Items {
		page.Items[i].LastRun = runs[page.Items[i].ID]
	}
	return page, err
}

const newestRunsSQL = `SELECT r.* FROM unnest($1::uuid[]) AS p(id)
	CROSS JOIN LATERAL (SELECT ` + syncRunColumns + ` FROM sync_runs WHERE integration_id = p.id ORDER BY id DESC LIMIT 1) r`

// newestRuns returns the newest run of each integration that has one: one
// index probe per integration (sync_runs_integration_idx), in one statement.
func (s *Store) newestRuns(ctx context.Context, ids []string) (map[string]*SyncRun, error) {
	rows, err := s.pool.Query(ctx, newestRunsSQL, ids)
	if err != nil {
		return nil, mapErr("newest runs", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SyncRun, error) { return scanSyncRun(r) })
	out := make(map[string]*SyncRun, len(runs))
	for _, run := range runs {
		out[run.IntegrationID] = &run
	}
	return out, mapErr("newest runs", err)
}
