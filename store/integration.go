package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
)

// Integration is one tenant: a Qualtrics credential for one functional group.
type Integration struct {
	ID              string
	Name            string
	FunctionalGroup string
	BaseURL         string
	Icon            string

	AuthMethod    microapps.AuthMethod
	SecretSealed  []byte // the API token or OAuth client secret, sealed
	SecretKeyID   string
	SecretHint    string
	OAuthClientID string
	OAuthScope    string

	RateLimitEnabled      bool
	RequestsPerMinute     int
	RequestTimeoutSeconds int
	LoggingEnabled        bool
	// Schedule is as stored: a zero period means its default (Effective).
	microapps.Schedule
	EventsEnabled bool
	// Veto is the rule that holds back a run's removals (zero: the default).
	Veto      microapps.VetoRule
	DeepLinks map[string]string

	BrandID         string
	Datacenter      string
	AccountType     string
	QualtricsUserID string
	BrandBaseURL    string

	Status                microapps.IntegrationStatus
	StatusMessage         string
	NextFullSyncAt        *time.Time
	NextIncrementalSyncAt *time.Time
	LastSyncAt            *time.Time
	LastSuccessAt         *time.Time
	FirstFullSyncAt       *time.Time
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

const integrationColumns = `id, name, functional_group, base_url, icon,
	auth_method, secret_sealed, secret_key_id, secret_hint, oauth_client_id, oauth_scope,
	rate_limit_enabled, requests_per_minute, request_timeout_seconds, logging_enabled,
	(extract(epoch from full_sync_every) * 1000)::bigint, (extract(epoch from incremental_sync_every) * 1000)::bigint,
	full_sync_window, events_enabled, deep_links,
	brand_id, datacenter, account_type, qualtrics_user_id, brand_base_url,
	status, status_message, next_full_sync_at, next_incremental_sync_at, last_sync_at, last_success_at,
	first_full_sync_at, created_at, updated_at, (extract(epoch from verify_every) * 1000)::bigint,
	veto_max_delete_percent, veto_min_rows`

func scanIntegration(row pgx.Row) (Integration, error) {
	var in Integration
	err := scanIntegrationInto(row, &in)
	return in, err
}

// scanIntegrationInto scans integrationColumns into in, and the columns
// after them into extra.
func scanIntegrationInto(row pgx.Row, in *Integration, extra ...any) error {
	var (
		fullMS, incrMS  int64
		verifyMS        int64
		window, deepRaw []byte
	)
	dest := []any{&in.ID, &in.Name, &in.FunctionalGroup, &in.BaseURL, &in.Icon,
		&in.AuthMethod, &in.SecretSealed, &in.SecretKeyID, &in.SecretHint, &in.OAuthClientID, &in.OAuthScope,
		&in.RateLimitEnabled, &in.RequestsPerMinute, &in.RequestTimeoutSeconds, &in.LoggingEnabled,
		&fullMS, &incrMS, &window, &in.EventsEnabled, &deepRaw,
		&in.BrandID, &in.Datacenter, &in.AccountType, &in.QualtricsUserID, &in.BrandBaseURL,
		&in.Status, &in.StatusMessage, &in.NextFullSyncAt, &in.NextIncrementalSyncAt, &in.LastSyncAt, &in.LastSuccessAt,
		&in.FirstFullSyncAt, &in.CreatedAt, &in.UpdatedAt, &verifyMS, &in.Veto.MaxDeletePercent, &in.Veto.MinRows}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	in.FullSyncEvery = time.Duration(fullMS) * time.Millisecond
	in.VerifyEvery = time.Duration(verifyMS) * time.Millisecond
	in.IncrementalSyncEvery = time.Duration(incrMS) * time.Millisecond
	if len(window) > 0 && string(window) != "null" {
		in.FullSyncWindow = new(microapps.SyncWindow)
		if err := json.Unmarshal(window, in.FullSyncWindow); err != nil {
			return fmt.Errorf("full_sync_window: %w", err)
		}
	}
	in.DeepLinks = map[string]string{}
	if len(deepRaw) > 0 {
		if err := json.Unmarshal(deepRaw, &in.DeepLinks); err != nil {
			return fmt.Errorf("deep_links: %w", err)
		}
	}
	return nil
}

func verifyEveryMS(d time.Duration) int64 {
	if d <= 0 {
		d = microapps.DefaultSchedule.VerifyEvery
	}
	return d.Milliseconds()
}

func integrationArgs(in *Integration) []any {
	var window any
	if in.FullSyncWindow != nil {
		window = in.FullSyncWindow
	}
	deep := in.DeepLinks
	if deep == nil {
		deep = map[string]string{}
	}
	veto := in.Veto
	if veto.MaxDeletePercent == 0 {
		veto = microapps.DefaultVetoRule // a zero rule is "not said"
	}
	return []any{in.ID, in.Name, in.FunctionalGroup, in.BaseURL, in.Icon,
		in.AuthMethod, in.SecretSealed, in.SecretKeyID, in.SecretHint, in.OAuthClientID, in.OAuthScope,
		in.RateLimitEnabled, in.RequestsPerMinute, in.RequestTimeoutSeconds, in.LoggingEnabled,
		in.FullSyncEvery.Milliseconds(), in.IncrementalSyncEvery.Milliseconds(), window, in.EventsEnabled, deep,
		in.BrandID, in.Datacenter, in.AccountType, in.QualtricsUserID, in.BrandBaseURL,
		in.Status, in.StatusMessage, in.NextFullSyncAt, in.NextIncrementalSyncAt, verifyEveryMS(in.VerifyEvery),
		veto.MaxDeletePercent, veto.MinRows}
}

// CreateIntegration inserts in (its ID chosen by the caller, because the ID is
// the associated data of the sealed secret) and records the audit event in the
// same transaction.
func (s *Store) CreateIntegration(ctx context.Context, in Integration, audit AuditEvent) (Integration, error) {
	var out Integration
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `INSERT INTO integrations (id, name, functional_group, base_url, icon,
			auth_method, secret_sealed, secret_key_id, secret_hint, oauth_client_id, oauth_scope,
			rate_limit_enabled, requests_per_minute, request_timeout_seconds, logging_enabled,
			full_sync_every, incremental_sync_every, full_sync_window, events_enabled, deep_links,
			brand_id, datacenter, account_type, qualtrics_user_id, brand_base_url,
			status, status_message, next_full_sync_at, next_incremental_sync_at, verify_every,
			veto_max_delete_percent, veto_min_rows)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,
			make_interval(secs => $16::bigint / 1000.0), make_interval(secs => $17::bigint / 1000.0),
			$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29, make_interval(secs => $30::bigint / 1000.0), $31, $32)
			RETURNING `+integrationColumns, integrationArgs(&in)...)
		var err error
		if out, err = scanIntegration(row); err != nil {
			return err
		}
		audit.IntegrationID = out.ID
		return insertAudit(ctx, tx, audit)
	})
	return out, mapErr("create integration", err)
}

// GetIntegration returns one integration.
func (s *Store) GetIntegration(ctx context.Context, id string) (Integration, error) {
	if !ValidUUID(id) {
		return Integration{}, fmt.Errorf("store: get integration: %w", ErrNotFound)
	}
	in, err := scanIntegration(s.pool.QueryRow(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = $1 AND deleted_at IS NULL`, id))
	return in, mapErr("get integration", err)
}

// ListIntegrations returns every integration, oldest first.
func (s *Store) ListIntegrations(ctx context.Context) ([]Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE deleted_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr("list integrations", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Integration, error) { return scanIntegration(r) })
	return out, mapErr("list integrations", err)
}

// UpdateIntegration reads the integration under a row lock, lets fn change it,
// and writes every writable column back with the audit event, atomically. fn
// returning an error aborts with nothing written.
func (s *Store) UpdateIntegration(ctx context.Context, id string, audit AuditEvent, fn func(*Integration) error) (Integration, error) {
	if !ValidUUID(id) {
		return Integration{}, fmt.Errorf("store: update integration: %w", ErrNotFound)
	}
	var out Integration
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		in, err := scanIntegration(tx.QueryRow(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if err := fn(&in); err != nil {
			return &callbackError{err}
		}
		in.ID = id
		row := tx.QueryRow(ctx, `UPDATE integrations SET name = $2, functional_group = $3, base_url = $4, icon = $5,
			auth_method = $6, secret_sealed = $7, secret_key_id = $8, secret_hint = $9, oauth_client_id = $10, oauth_scope = $11,
			rate_limit_enabled = $12, requests_per_minute = $13, request_timeout_seconds = $14, logging_enabled = $15,
			full_sync_every = make_interval(secs => $16::bigint / 1000.0), incremental_sync_every = make_interval(secs => $17::bigint / 1000.0),
			full_sync_window = $18, events_enabled = $19, deep_links = $20,
			brand_id = $21, datacenter = $22, account_type = $23, qualtrics_user_id = $24, brand_base_url = $25,
			status = $26, status_message = $27, next_full_sync_at = $28, next_incremental_sync_at = $29,
			verify_every = make_interval(secs => $30::bigint / 1000.0),
			veto_max_delete_percent = $31, veto_min_rows = $32, updated_at = now()
			WHERE id = $1 RETURNING `+integrationColumns, integrationArgs(&in)...)
		if out, err = scanIntegration(row); err != nil {
			return err
		}
		audit.IntegrationID = id
		if audit.Action == "" {
			return nil
		}
		return insertAudit(ctx, tx, audit)
	})
	var cbErr *callbackError
	if errors.As(err, &cbErr) {
		return out, cbErr.err // the caller's own error, unchanged
	}
	return out, mapErr("update integration", err)
}

type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// DeleteIntegration deletes the integration as far as anyone can see, at
// once: the row is marked deleted (the API, the pages, the rules and the
// scheduler skip it from now on) and its Brand Admins are removed; its synced
// data is removed afterwards, in batches, by RemoveDeletedIntegration (a
// background job), so the request never deletes millions of rows. It returns
// the River job ids of runs still queued or running, for the caller to cancel.
func (s *Store) DeleteIntegration(ctx context.Context, id string, audit AuditEvent) (jobIDs []int64, err error) {
	if !ValidUUID(id) {
		return nil, fmt.Errorf("store: delete integration: %w", ErrNotFound)
	}
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE integrations SET deleted_at = now(), events_enabled = false,
			next_full_sync_at = NULL, next_incremental_sync_at = NULL, updated_at = now()
			WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		rows, err := tx.Query(ctx, `SELECT river_job_id FROM sync_runs
			WHERE integration_id = $1 AND status IN ('queued', 'running') AND river_job_id IS NOT NULL`, id)
		if err != nil {
			return err
		}
		if jobIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM brand_admins WHERE integration_id = $1`, id); err != nil {
			return err
		}
		audit.IntegrationID = id
		return insertAudit(ctx, tx, audit)
	})
	return jobIDs, mapErr("delete integration", err)
}

// ValidUUID reports whether s is a UUID in its canonical 36-character form.
// Integration ids that are not never reach the uuid column: they are simply
// not found, whoever asks.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ResealSecrets re-seals every integration's credential: reseal gets the
// stored key id and sealed bytes and returns new ones. Each row is rewritten
// under a row lock, so a concurrent token change is never lost. It returns how
// many secrets were rewritten.
func (s *Store) ResealSecrets(ctx context.Context, reseal func(integrationID, keyID string, sealed []byte) (string, []byte, error)) (int, error) {
	return s.resealColumn(ctx, "reseal", "secret_key_id", "secret_sealed", reseal)
}

// ResealWebhookSecrets re-seals every integration's webhook signing secret,
// like ResealSecrets does for credentials.
func (s *Store) ResealWebhookSecrets(ctx context.Context, reseal func(integrationID, keyID string, sealed []byte) (string, []byte, error)) (int, error) {
	return s.resealColumn(ctx, "reseal webhook secrets", "webhook_secret_key_id", "webhook_secret_sealed", reseal)
}

// resealColumn rewrites one sealed column of integrations (and the column of
// its key id), row by row under a row lock, skipping rows where it is NULL or
// empty. keyCol and sealedCol are constants of this package, never input.
func (s *Store) resealColumn(ctx context.Context, what, keyCol, sealedCol string,
	reseal func(integrationID, keyID string, sealed []byte) (string, []byte, error)) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM integrations WHERE length(`+sealedCol+`) > 0 ORDER BY id`)
	if err != nil {
		return 0, mapErr(what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, mapErr(what, err)
	}
	n := 0
	for _, id := range ids {
		err := s.WithTx(ctx, func(tx pgx.Tx) error {
			var keyID string
			var sealed []byte
			err := tx.QueryRow(ctx, `SELECT `+keyCol+`, `+sealedCol+` FROM integrations
				WHERE id = $1 AND length(`+sealedCol+`) > 0 FOR UPDATE`, id).Scan(&keyID, &sealed)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // deleted or cleared meanwhile
			}
			if err != nil {
				return err
			}
			newID, newSealed, err := reseal(id, keyID, sealed)
			if err != nil {
				return fmt.Errorf("integration %s: %w", id, err)
			}
			_, err = tx.Exec(ctx, `UPDATE integrations SET `+keyCol+` = $2, `+sealedCol+` = $3, updated_at = now() WHERE id = $1`, id, newID, newSealed)
			return err
		})
		if err != nil {
			return n, mapErr(what, err)
		}
		n++
	}
	return n, nil
}
