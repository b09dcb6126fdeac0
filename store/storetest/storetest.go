// Package storetest gives tests a real PostgreSQL database of their own, cloned
// from a template that is migrated once per schema version, so a test package
// pays for migrations once and tests never see each other's rows.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/store"
)

// DefaultAdminURL is used when MICROAPPS_TEST_DATABASE_URL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL of the server's maintenance database that tests create
// their databases from.
func AdminURL() string {
	if u := os.Getenv("MICROAPPS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// NewDatabase creates an empty database (no schema) and returns its URL. It is
// dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return create(t, "")
}

// NewMigrated creates a database cloned from the migrated template and returns
// its URL. It is dropped when the test ends.
func NewMigrated(t testing.TB) string {
	t.Helper()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate() })
	if templateErr != nil {
		t.Fatalf("storetest: %v", templateErr)
	}
	return create(t, templateName)
}

// New returns a Store on a fresh migrated database, closed and dropped when the
// test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	dbURL := NewMigrated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dbURL, store.Options{MaxConns: 8, AppName: "microapps-test"})
	if err != nil {
		t.Fatalf("storetest: open %s: %v", redact(dbURL), err)
	}
	t.Cleanup(s.Close)
	return s
}

// Tx opens a transaction on s that is rolled back when the test ends, for
// tests that need no commit.
func Tx(t testing.TB, s *store.Store) pgx.Tx {
	t.Helper()
	tx, err := s.Pool().Begin(context.Background())
	if err != nil {
		t.Fatalf("storetest: begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func create(t testing.TB, template string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	name := "microapps_test_" + randomSuffix()
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	// Cloning fails while another session is connected to the template (a
	// concurrent package may be finishing it), so retry for a while.
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, stmt)
		if err == nil || attempt >= 40 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		var who []string
		if template != "" {
			rows, qerr := admin.Query(context.Background(), `SELECT coalesce(application_name, '') || ' pid ' || pid || ' ' || coalesce(state, '')
				FROM pg_stat_activity WHERE datname = $1`, template)
			if qerr == nil {
				who, _ = pgx.CollectRows(rows, pgx.RowTo[string])
			}
		}
		t.Fatalf("storetest: create database %s: %v (sessions on the template: %v)", name, err, who)
	}
	t.Cleanup(func() { drop(t, name) })
	return withDatabase(AdminURL(), name)
}

func drop(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		t.Logf("storetest: drop %s: %v", name, err)
		return
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("storetest: drop %s: %v", name, err)
	}
}

// ensureTemplate creates and migrates the template database once per schema
// fingerprint. An advisory lock serialises test packages that start at once.
func ensureTemplate() (string, error) {
	fp, err := migrations.Fingerprint()
	if err != nil {
		return "", err
	}
	name := "microapps_tpl_" + fp
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		return "", err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(7265390112)`); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(7265390112)`) //nolint:errcheck

	var ready bool
	err = admin.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database') = 'ready', false)
		FROM pg_database WHERE datname = $1`, name).Scan(&ready)
	if err != nil && err != pgx.ErrNoRows {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if ready {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrations.Up(ctx, withDatabase(AdminURL(), name)); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS 'ready'"); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return nil, fmt.Errorf("storetest: PostgreSQL is unreachable at %s: %v\n"+
			"Tests need a running PostgreSQL: start it (e.g. pg_ctlcluster 15 main start) "+
			"or point MICROAPPS_TEST_DATABASE_URL at a server where the user may create databases", redact(AdminURL()), err)
	}
	return conn, nil
}

func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	u.Path = "/" + name
	return u.String()
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
