package store

import "context"

// IntegrationCounts is what the console's list shows of an integration's data.
type IntegrationCounts struct {
	ActiveSurveys int // active, not deleted
	Recipients    int // recipient rows read by the last successful full sync
}

// ConsoleCounts returns the counts of every integration by id. It reads the
// open-surveys index and the newest full run, never the recipients table.
func (s *Store) ConsoleCounts(ctx context.Context) (map[string]IntegrationCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id::text,
	    (SELECT count(*) FROM surveys sv WHERE sv.integration_id = i.id AND sv.is_active AND sv.deleted_at IS NULL),
	    coalesce((SELECT r.recipients FROM sync_runs r WHERE r.integration_id = i.id AND r.kind = 'full'
	              AND r.status = 'succeeded' ORDER BY r.id DESC LIMIT 1), 0)
	FROM integrations i`)
	if err != nil {
		return nil, mapErr("console counts", err)
	}
	defer rows.Close()
	out := map[string]IntegrationCounts{}
	for rows.Next() {
		var id string
		var c IntegrationCounts
		if err := rows.Scan(&id, &c.ActiveSurveys, &c.Recipients); err != nil {
			return nil, mapErr("console counts", err)
		}
		out[id] = c
	}
	return out, mapErr("console counts", rows.Err())
}
