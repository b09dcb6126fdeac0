package migrations_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// Migration 0021 keeps the unsubscribe links of emails
// already sent working, by their hash, for 60 days, and drops the clear
// tokens; it clears the brand base URLs that are no https qualtrics.com
// origin (learnt again, through the check, by the next sync); its down
// migration runs on a database holding hashed tokens.
func TestClearUnsubscribeTokensBecomeHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDatabase(t)
	if err := migrations.UpTo(dbURL, 20); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO user_settings (email, unsubscribe_token, email_off) VALUES
		('ann@example.com', 'token-of-ann-0123456789', false), ('bob@example.com', NULL, true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO integrations (id, name, base_url, secret_sealed, secret_key_id, brand_base_url) VALUES
		('00000000-0000-4000-8000-000000000001', 'Good', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', 'https://acme.qualtrics.com'),
		('00000000-0000-4000-8000-000000000002', 'Evil', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', 'https://evil.example/sso'),
		('00000000-0000-4000-8000-000000000003', 'Look-alike', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', 'https://qualtrics.com.evil.example'),
		('00000000-0000-4000-8000-000000000004', 'Plain', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', 'http://acme.qualtrics.com'),
		('00000000-0000-4000-8000-000000000005', 'None', 'https://iad1.qualtrics.com/API/v3/', '\x00', 'k', '')`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.UpTo(dbURL, 21); err != nil {
		t.Fatal(err)
	}
	var kept string
	if err := conn.QueryRow(ctx, `SELECT string_agg(name || '=' || brand_base_url, ' ' ORDER BY id) FROM integrations`).Scan(&kept); err != nil ||
		kept != "Good=https://acme.qualtrics.com Evil= Look-alike= Plain= None=" {
		t.Errorf("brand base URLs after 0021: %q (%v); only the qualtrics.com https one is kept", kept, err)
	}
	var clear int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'user_settings' AND column_name = 'unsubscribe_token'`).Scan(&clear); err != nil || clear != 0 {
		t.Fatalf("the clear token column is still there (%d, %v)", clear, err)
	}
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if email, err := st.EmailOfToken(ctx, "token-of-ann-0123456789", now); err != nil || email != "ann@example.com" {
		t.Errorf("an old link after the migration: %q, %v", email, err)
	}
	if _, err := st.EmailOfToken(ctx, "token-of-ann-0123456789", now.Add(61*24*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an old link 61 days later: %v, want not found", err)
	}
	if _, err := st.UnsubscribeToken(ctx, "bob@example.com", now); err != nil {
		t.Fatal(err)
	}
	if err := migrations.UpTo(dbURL, 20); err != nil {
		t.Fatalf("down from 0021 with hashed tokens stored: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM user_settings WHERE unsubscribe_token IS NULL`).Scan(&n); err != nil || n != 2 {
		t.Errorf("after down: %d users without a token (%v), want 2", n, err)
	}
}
