package store

import "context"

// IntegrationCounts is what the console's list shows of an integration's data.
type IntegrationCounts struct {
	ActiveSurveys int // active, not deleted
	Recipients    int // invitations sent by its distributions still listed (Qualtrics' "sent" figures)
}

// ConsoleCounts returns the counts of every integration by id. It reads the
// open-surveys index and the distributions' figures, never the recipients
// table. (A full sync no longer reads every recipient, so the run's own
// count is not the integration's size.)
func (s *Store) ConsoleCounts(ctx context.Context) (map[string]IntegrationCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id::text,
	    (SELECT count(*) FROM surveys sv WHERE sv.integration_id = i.id AND sv.is_active AND sv.deleted_at IS NULL),
	    coalesce((SELECT sum(d.sent) FROM distributions d WHERE d.integration_id = i.id AND d.deleted_at IS NULL
	              AND d.request_type <> 'TestEmail'), 0)::bigint
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
