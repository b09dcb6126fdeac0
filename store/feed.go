package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// FeedItem is one notification in a user's feed. The notify package writes
// the rows; pages only read them and mark them read.
type FeedItem struct {
	ID             int64
	IntegrationID  string
	Kind           microapps.NotificationKind
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

// Feed returns email's unexpired notifications, newest first, with their
// integrations' link settings, in one round trip (Summary is left zero).
func (s *Store) Feed(ctx context.Context, email string, now time.Time, limit int) (FeedPage, error) {
	return s.feed(ctx, email, now, limit, false)
}

func scanFeed(rows pgx.Rows) ([]FeedItem, error) {
	defer rows.Close()
	var out []FeedItem
	for rows.Next() {
		var f FeedItem
		if err := rows.Scan(&f.ID, &f.IntegrationID, &f.Kind, &f.SurveyID, &f.DistributionID, &f.Data,
			&f.CreatedAt, &f.ExpiresAt, &f.ReadAt); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
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

// FeedPage is a user's feed as the Notifications page and /api/v1/me show it.
type FeedPage struct {
	Summary UserSummary // the page frame's (FeedPage only)
	Items   []FeedItem
	// Links are the link settings of the items' integrations, by id, for
	// their buttons.
	Links map[string]IntegrationLinks
}

// feedLinksSQL is the link settings of the integrations of email's feed
// ($1 email, $2 now, $3 limit: feedSQL's).
var feedLinksSQL = `SELECT i.id::text, i.base_url, i.brand_base_url, i.deep_links FROM integrations i
WHERE i.id IN (SELECT f.integration_id::uuid FROM (` + feedSQL + `) f)`

// FeedPage is Feed with the page frame's summary, for the Notifications
// page: one batch, one round trip.
func (s *Store) FeedPage(ctx context.Context, email string, now time.Time, limit int) (FeedPage, error) {
	return s.feed(ctx, email, now, limit, true)
}

func (s *Store) feed(ctx context.Context, email string, now time.Time, limit int, summary bool) (FeedPage, error) {
	p := FeedPage{Links: map[string]IntegrationLinks{}}
	if limit <= 0 {
		limit = 100
	}
	b := &pgx.Batch{}
	if summary {
		b.Queue(userSummarySQL, email, now).QueryRow(func(row pgx.Row) error {
			return row.Scan(&p.Summary.Unread, &p.Summary.IsAdmin)
		})
	}
	b.Queue(feedSQL, email, now, limit).Query(func(rows pgx.Rows) error {
		var err error
		p.Items, err = scanFeed(rows)
		return err
	})
	b.Queue(feedLinksSQL, email, now, limit).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var l IntegrationLinks
			if err := rows.Scan(&id, &l.BaseURL, &l.BrandBaseURL, &l.DeepLinks); err != nil {
				return err
			}
			p.Links[id] = l
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return p, mapErr("feed", err)
	}
	return p, nil
}
