// Package migrations holds the database schema as numbered SQL files and runs
// them: golang-migrate for the product's own tables, then River's migrator for
// the job queue's tables, so one `microapps migrate up` prepares everything.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for golang-migrate
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// Status describes where a database's schema stands.
type Status struct {
	Version     uint // the product's schema version (0 = none)
	Dirty       bool // a migration failed half-way and needs a human
	Latest      uint // the version this binary ships
	River       int  // River's schema version (0 = none)
	RiverLatest int
}

// Current reports whether the schema is exactly what this binary expects.
func (s Status) Current() bool {
	return !s.Dirty && s.Version == s.Latest && s.River == s.RiverLatest
}

func (s Status) String() string {
	dirty := ""
	if s.Dirty {
		dirty = " (dirty)"
	}
	return fmt.Sprintf("schema %d of %d%s, river %d of %d", s.Version, s.Latest, dirty, s.River, s.RiverLatest)
}

// Latest is the highest migration version embedded in this binary.
func Latest() (uint, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil //nolint:nilerr // end of the list
		}
		v = next
	}
}

func newMigrate(db *sql.DB) (*migrate.Migrate, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: source: %w", err)
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return nil, fmt.Errorf("migrations: driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return m, nil
}

func openSQL(databaseURL string) (*sql.DB, error) {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return nil, fmt.Errorf("migrations: open database: %w", err)
	}
	return db, nil
}

func riverMigrator(pool *pgxpool.Pool) (*rivermigrate.Migrator[pgx.Tx], error) {
	return rivermigrate.New(riverpgxv5.New(pool), nil)
}

// Up applies every pending migration, the product's first, then River's.
func Up(ctx context.Context, databaseURL string) error {
	err := withMigrate(databaseURL, func(m *migrate.Migrate) error { return m.Up() })
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	if err := rebuildInvalidIndexes(ctx, databaseURL); err != nil {
		return err
	}
	return migrateRiver(ctx, databaseURL, rivermigrate.DirectionUp, nil)
}

// rebuildInvalidIndexes rebuilds, concurrently, every index of the schema
// that a failed CREATE INDEX CONCURRENTLY left INVALID: the migration that
// built it says IF NOT EXISTS, so running it again would keep an index that
// is maintained on every write and never used.
func rebuildInvalidIndexes(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("migrations: invalid indexes: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT i.indisvalid AND n.nspname = current_schema()
			AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)`)
	if err != nil {
		return fmt.Errorf("migrations: invalid indexes: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("migrations: invalid indexes: %w", err)
	}
	for _, name := range names {
		if _, err := conn.Exec(ctx, `REINDEX INDEX CONCURRENTLY `+name); err != nil {
			return fmt.Errorf("migrations: rebuild invalid index %s: %w", name, err)
		}
	}
	return nil
}

// Down removes River's tables, then rolls every product migration back.
func Down(ctx context.Context, databaseURL string) error {
	if err := migrateRiver(ctx, databaseURL, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1}); err != nil {
		return err
	}
	if err := withMigrate(databaseURL, func(m *migrate.Migrate) error { return m.Down() }); err != nil {
		return fmt.Errorf("migrations: down: %w", err)
	}
	return nil
}

// withMigrate runs fn on a golang-migrate instance over the embedded files;
// "nothing to do" is not an error.
func withMigrate(databaseURL string, fn func(*migrate.Migrate) error) error {
	db, err := openSQL(databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := newMigrate(db)
	if err != nil {
		return err
	}
	// Close releases the dedicated connection the driver holds for its lock;
	// left open, it keeps the database busy (a template could not be cloned).
	defer m.Close()
	if err := fn(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

func migrateRiver(ctx context.Context, databaseURL string, dir rivermigrate.Direction, opts *rivermigrate.MigrateOpts) error {
	return withPool(ctx, databaseURL, func(pool *pgxpool.Pool) error {
		rm, err := riverMigrator(pool)
		if err != nil {
			return fmt.Errorf("migrations: river: %w", err)
		}
		if _, err := rm.Migrate(ctx, dir, opts); err != nil {
			return fmt.Errorf("migrations: river %s: %w", dir, err)
		}
		return nil
	})
}

// Check reports the schema's status using an existing pool; it changes nothing.
func Check(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	var st Status
	latest, err := Latest()
	if err != nil {
		return st, fmt.Errorf("migrations: %w", err)
	}
	st.Latest = latest
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return st, fmt.Errorf("migrations: check: %w", err)
	}
	if exists {
		var v int64
		err := pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &st.Dirty)
		if err == nil {
			st.Version = uint(v)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return st, fmt.Errorf("migrations: check: %w", err)
		}
	}
	rm, err := riverMigrator(pool)
	if err != nil {
		return st, fmt.Errorf("migrations: river: %w", err)
	}
	all := rm.AllVersions()
	if len(all) > 0 {
		st.RiverLatest = all[len(all)-1].Version
	}
	var riverExists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('river_migration') IS NOT NULL`).Scan(&riverExists); err != nil {
		return st, fmt.Errorf("migrations: check: %w", err)
	}
	if riverExists {
		existing, err := rm.ExistingVersions(ctx)
		if err != nil {
			return st, fmt.Errorf("migrations: river versions: %w", err)
		}
		if len(existing) > 0 {
			st.River = existing[len(existing)-1].Version
		}
	}
	return st, nil
}

// Version reports the schema's status of the database at databaseURL.
func Version(ctx context.Context, databaseURL string) (Status, error) {
	var st Status
	err := withPool(ctx, databaseURL, func(pool *pgxpool.Pool) error {
		var err error
		st, err = Check(ctx, pool)
		return err
	})
	return st, err
}

func withPool(ctx context.Context, databaseURL string, fn func(*pgxpool.Pool) error) error {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("migrations: connect: %w", err)
	}
	defer pool.Close()
	return fn(pool)
}

// Fingerprint identifies the schema this binary builds: a hash of every
// migration file and River's latest version. Test helpers name their template
// databases after it so a changed migration gets a fresh template.
func Fingerprint() (string, error) {
	h := sha256.New()
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), len(b))
		h.Write(b)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", err
	}
	all := rm.AllVersions()
	fmt.Fprintf(h, "river\x00%d", all[len(all)-1].Version)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
