package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExplainMyActiveSurveys returns the plan PostgreSQL picks now for the My
// active surveys query of email (EXPLAIN, not run), for tests that check the
// planner's statistics lead it to the user's index.
func (s *Store) ExplainMyActiveSurveys(ctx context.Context, email string, now time.Time) (string, error) {
	rows, err := s.pool.Query(ctx, "EXPLAIN "+myActiveSurveysSQL, email, now)
	if err != nil {
		return "", mapErr("explain my active surveys", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), mapErr("explain my active surveys", err)
}
