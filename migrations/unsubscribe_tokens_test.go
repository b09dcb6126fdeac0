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

// Migration 0021 (issue 31, item 4) keeps the unsubscribe links of emails
// already sent working, by their hash, for 60 days, and drops the clear
// tokens; its down migration runs on a database holding hashed tokens.
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
	if err := migrations.UpTo(dbURL, 21); err != nil {
		t.Fatal(err)
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
