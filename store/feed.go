package store

import (
	"context"
	"encoding/json"
	"time"
)

// FeedItem is one notification in a user's feed. The notify package writes
// the rows; pages only read them and mark them read.
type FeedItem struct {
	ID             int64
	IntegrationID  string
	Kind           string // new_survey, survey_expiring, survey_statistics
	SurveyID       string
	DistributionID string
	Data           json.RawMessage
	CreatedAt      time.Time
	ExpiresAt      time.Time
	ReadAt         *time.Time
}

const feedSQL = `SELECT id, integration_id::text, kind, survey_id, distribution_id, data,
       created_at, expires_at, read_at
FROM notifications n
WHERE email = $1 AND expires_at > $2
  AND NOT EXISTS (SELECT 1 FROM integrations i WHERE i.id = n.integration_id AND i.deleted_at IS NOT NULL)
ORDER BY created_at DESC, id DESC
LIMIT $3`

// Feed returns email's unexpired notifications, newest first.
func (s *Store) Feed(ctx context.Context, email string, now time.Time, limit int) ([]FeedItem, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, feedSQL, email, now, limit)
	if err != nil {
		return nil, mapErr("feed", err)
	}
	defer rows.Close()
	var out []FeedItem
	for rows.Next() {
		var f FeedItem
		if err := rows.Scan(&f.ID, &f.IntegrationID, &f.Kind, &f.SurveyID, &f.DistributionID, &f.Data,
			&f.CreatedAt, &f.ExpiresAt, &f.ReadAt); err != nil {
			return nil, mapErr("feed", err)
		}
		out = append(out, f)
	}
	return out, mapErr("feed", rows.Err())
}

// UserSummary is what the layout shows on every page.
type UserSummary struct {
	Unread  int  // unexpired unread notifications
	IsAdmin bool // Brand Admin of at least one integration
}

const userSummarySQL = `SELECT
  (SELECT count(*) FROM notifications n WHERE email = $1 AND expires_at > $2 AND read_at IS NULL
     AND NOT EXISTS (SELECT 1 FROM integrations i WHERE i.id = n.integration_id AND i.deleted_at IS NOT NULL)),
  EXISTS (SELECT 1 FROM brand_admins WHERE email = $1)`

// UserSummary counts email's unread notifications and says whether the user
// administers any integration, in one round trip.
func (s *Store) UserSummary(ctx context.Context, email string, now time.Time) (UserSummary, error) {
	var u UserSummary
	err := s.pool.QueryRow(ctx, userSummarySQL, email, now).Scan(&u.Unread, &u.IsAdmin)
	return u, mapErr("user summary", err)
}

// MarkRead marks one of email's notifications read (id > 0) or all of them
// (id == 0) and returns how many changed. Another user's id changes nothing.
func (s *Store) MarkRead(ctx context.Context, email string, id int64, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE notifications SET read_at = $3
WHERE email = $1 AND ($2::bigint = 0 OR id = $2::bigint) AND read_at IS NULL AND expires_at > $3`, email, id, now)
	if err != nil {
		return 0, mapErr("mark read", err)
	}
	return tag.RowsAffected(), nil
}
