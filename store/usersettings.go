package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// UserSettings are one user's notification settings (user_settings). A user
// with no row has the zero value: language and zone unknown, email on.
type UserSettings struct {
	Email    string
	Language string // "", "en" or "fr"
	TimeZone string // IANA name, "" when unknown
	EmailOff bool
}

// GetUserSettings returns a user's settings, the zero value (with Email set)
// when none were stored.
func (s *Store) GetUserSettings(ctx context.Context, email string) (UserSettings, error) {
	u := UserSettings{Email: email}
	err := s.pool.QueryRow(ctx, `SELECT language, time_zone, email_off FROM user_settings WHERE email = $1`, email).
		Scan(&u.Language, &u.TimeZone, &u.EmailOff)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, nil
	}
	return u, mapErr("get user settings", err)
}

// RememberUserLocale stores the language and time zone a user's browser
// reported; an empty value leaves the stored one as it is. It writes only
// when something changed, so calling it on every page costs a read at most.
func (s *Store) RememberUserLocale(ctx context.Context, email, language, timeZone string, now time.Time) error {
	if email == "" || (language == "" && timeZone == "") {
		return nil
	}
	if len(timeZone) > 64 {
		timeZone = ""
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO user_settings AS u (email, language, time_zone, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (email) DO UPDATE SET
			language = coalesce(nullif(excluded.language, ''), u.language),
			time_zone = coalesce(nullif(excluded.time_zone, ''), u.time_zone),
			updated_at = excluded.updated_at
		WHERE (excluded.language <> '' AND excluded.language <> u.language)
			OR (excluded.time_zone <> '' AND excluded.time_zone <> u.time_zone)`, email, language, timeZone, now)
	return mapErr("remember user locale", err)
}

// SetEmailOff turns a user's email notifications off (true) or back on.
// Turning them back on removes every unsubscribe token of the user: a link
// in an email sent before (perhaps forwarded) must not turn them off again.
func (s *Store) SetEmailOff(ctx context.Context, email string, off bool, now time.Time) error {
	_, err := s.pool.Exec(ctx, `WITH rotated AS (
			DELETE FROM unsubscribe_tokens WHERE email = $1 AND NOT $2
				AND EXISTS (SELECT 1 FROM user_settings WHERE email = $1 AND email_off))
		INSERT INTO user_settings AS u (email, email_off, email_off_at, updated_at)
		VALUES ($1, $2, CASE WHEN $2 THEN $3::timestamptz END, $3)
		ON CONFLICT (email) DO UPDATE SET email_off = excluded.email_off,
			email_off_at = CASE WHEN excluded.email_off THEN coalesce(u.email_off_at, excluded.email_off_at) END,
			updated_at = excluded.updated_at`, email, off, now)
	return mapErr("set email off", err)
}

// UnsubscribeTokenLifetime is how long the unsubscribe link of one email works.
const UnsubscribeTokenLifetime = 60 * 24 * time.Hour

// unsubscribePurgeBatch bounds the expired tokens each new token removes.
const unsubscribePurgeBatch = 100

// hashToken is what is stored of an unsubscribe token: its SHA-256, so the
// table (a backup, a read replica) holds nothing that unsubscribes anyone.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// UnsubscribeToken makes a new unsubscribe token (32 random bytes) for one
// email to the user, valid UnsubscribeTokenLifetime. Only its hash is
// stored, so each email gets its own; each call also removes a few expired
// tokens, which keeps the table to the emails of the last 60 days.
func (s *Store) UnsubscribeToken(ctx context.Context, email string, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	_, err := s.pool.Exec(ctx, `WITH purged AS (
			DELETE FROM unsubscribe_tokens WHERE ctid = ANY (ARRAY (
				SELECT ctid FROM unsubscribe_tokens WHERE expires_at <= $3 ORDER BY expires_at LIMIT $5)))
		INSERT INTO unsubscribe_tokens (token_hash, email, expires_at) VALUES ($1, $2, $4)`,
		hashToken(token), email, now, now.Add(UnsubscribeTokenLifetime), unsubscribePurgeBatch)
	return token, mapErr("unsubscribe token", err)
}

// UnsubscribeEmail turns email off for the user whose unexpired token this
// is and returns their email; ErrNotFound when no user has it.
func (s *Store) UnsubscribeEmail(ctx context.Context, token string, now time.Time) (string, error) {
	var email string
	err := s.pool.QueryRow(ctx, `INSERT INTO user_settings AS u (email, email_off, email_off_at, updated_at)
		SELECT email, true, $2, $2 FROM unsubscribe_tokens WHERE token_hash = $1 AND expires_at > $2
		ON CONFLICT (email) DO UPDATE SET email_off = true,
			email_off_at = coalesce(u.email_off_at, excluded.email_off_at), updated_at = excluded.updated_at
		RETURNING email`, hashToken(token), now).Scan(&email)
	return email, mapErr("unsubscribe", err)
}

// EmailOfToken returns the email of the user whose unexpired unsubscribe
// token this is, without changing anything; ErrNotFound when no user has it.
func (s *Store) EmailOfToken(ctx context.Context, token string, now time.Time) (string, error) {
	var email string
	err := s.pool.QueryRow(ctx, `SELECT email FROM unsubscribe_tokens WHERE token_hash = $1 AND expires_at > $2`,
		hashToken(token), now).Scan(&email)
	return email, mapErr("unsubscribe token", err)
}

// NotificationDefaults are an integration's language and time zone for the
// people who never signed in.
type NotificationDefaults struct {
	Language string // "en" or "fr"
	TimeZone string // IANA name
}

// GetNotificationDefaults reads an integration's notification defaults.
func (s *Store) GetNotificationDefaults(ctx context.Context, integrationID string) (NotificationDefaults, error) {
	var d NotificationDefaults
	if !ValidUUID(integrationID) {
		return d, mapErr("get notification defaults", pgx.ErrNoRows)
	}
	err := s.pool.QueryRow(ctx, `SELECT notification_language, notification_time_zone FROM integrations WHERE id = $1`,
		integrationID).Scan(&d.Language, &d.TimeZone)
	return d, mapErr("get notification defaults", err)
}

// SetNotificationDefaults changes an integration's notification defaults and
// records the audit event in the same transaction.
func (s *Store) SetNotificationDefaults(ctx context.Context, integrationID string, d NotificationDefaults, audit AuditEvent) error {
	if !ValidUUID(integrationID) {
		return mapErr("set notification defaults", pgx.ErrNoRows)
	}
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE integrations SET notification_language = $2, notification_time_zone = $3
			WHERE id = $1`, integrationID, d.Language, d.TimeZone)
		if err != nil {
			return mapErr("set notification defaults", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("set notification defaults", pgx.ErrNoRows)
		}
		audit.IntegrationID = integrationID
		return insertAudit(ctx, tx, audit)
	})
}

// CountIntegrationsNeedingPublicURL counts the integrations whose webhook
// messages or Qualtrics event callbacks carry the service's public URL.
func (s *Store) CountIntegrationsNeedingPublicURL(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM integrations WHERE webhook_url <> '' OR events_enabled`).Scan(&n)
	return n, mapErr("count integrations needing the public URL", err)
}

// AnySurveyID returns one of an integration's surveys, active ones first;
// ErrNotFound when it has none.
func (s *Store) AnySurveyID(ctx context.Context, integrationID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT qualtrics_id FROM surveys WHERE integration_id = $1 AND deleted_at IS NULL
		ORDER BY is_active DESC, qualtrics_id LIMIT 1`, integrationID).Scan(&id)
	return id, mapErr("any survey", err)
}

// SetBrandBaseURL records the brand's web host learnt from Qualtrics, unless
// one is already known.
func (s *Store) SetBrandBaseURL(ctx context.Context, integrationID, brandBaseURL string) error {
	_, err := s.pool.Exec(ctx, `UPDATE integrations SET brand_base_url = $2 WHERE id = $1 AND brand_base_url = ''`,
		integrationID, brandBaseURL)
	return mapErr("set brand base URL", err)
}

// IntegrationLinks are an integration's link settings: what deep links into
// Qualtrics are built from.
type IntegrationLinks struct {
	BaseURL      string
	BrandBaseURL string
	DeepLinks    map[string]string
}
