package storetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PartitionsEnv, when set to a number N > 0, makes the migrated template of
// the store's tests hash-partition recipients by integration_id into N
// partitions (PartitionRecipients), so the whole store suite can run against
// the partitioned variant the scale benchmark measures (issue 16, item 4).
const PartitionsEnv = "MICROAPPS_TEST_RECIPIENT_PARTITIONS"

// testPartitions is PartitionsEnv's value (0 when unset or invalid).
func testPartitions() int {
	n, err := strconv.Atoi(os.Getenv(PartitionsEnv))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// PartitionRecipients replaces the empty recipients table of a migrated
// database with one hash-partitioned by integration_id into n partitions
// (recipients_p0 … recipients_p<n-1>). Everything else stays as the
// migrations made it, read from the catalog rather than restated: every
// column with its type, NOT NULL and default; every check and foreign key
// (the cascade from integrations) and the primary key, under the same names;
// every index under the same name with the same partial predicate (on the
// parent, so each partition gets its own and the parent's serves as a
// partitioned index); the triggers; and the table's storage parameters
// (autovacuum thresholds), set on each partition since a partitioned table
// holds none. It refuses a table that has rows or that other objects
// (views, foreign keys) depend on. An experiment of the benchmark, not a
// migration.
func PartitionRecipients(ctx context.Context, dbURL string, n int) error {
	if n < 1 {
		return fmt.Errorf("partition recipients: %d partitions", n)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck

	var kind string
	var nonEmpty bool
	if err := tx.QueryRow(ctx, `SELECT relkind::text, EXISTS (SELECT 1 FROM recipients) FROM pg_class WHERE oid = 'recipients'::regclass`).Scan(&kind, &nonEmpty); err != nil {
		return fmt.Errorf("partition recipients: %w", err)
	}
	if kind != "r" || nonEmpty {
		return fmt.Errorf("partition recipients: the table is not an empty plain table (relkind %s, rows %v)", kind, nonEmpty)
	}
	list := func(q string) ([]string, error) {
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	// Constraints in an order that works: primary key, checks, foreign keys.
	constraints, err := list(`SELECT format('ALTER TABLE recipients ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid))
		FROM pg_constraint WHERE conrelid = 'recipients'::regclass
		ORDER BY CASE contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'c' THEN 2 ELSE 3 END, conname`)
	if err != nil {
		return fmt.Errorf("partition recipients: constraints: %w", err)
	}
	indexes, err := list(`SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
		WHERE i.indrelid = 'recipients'::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		ORDER BY i.indexrelid::regclass::text`)
	if err != nil {
		return fmt.Errorf("partition recipients: indexes: %w", err)
	}
	triggers, err := list(`SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'recipients'::regclass AND NOT tgisinternal ORDER BY tgname`)
	if err != nil {
		return fmt.Errorf("partition recipients: triggers: %w", err)
	}
	var options []string
	if err := tx.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'recipients'::regclass`).Scan(&options); err != nil {
		return fmt.Errorf("partition recipients: options: %w", err)
	}
	stmts := []string{
		`CREATE TABLE recipients_partitioned (LIKE recipients INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY
			INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY HASH (integration_id)`,
		// RESTRICT: a view or a foreign key that reads recipients stops it.
		`DROP TABLE recipients RESTRICT`,
		`ALTER TABLE recipients_partitioned RENAME TO recipients`,
	}
	stmts = append(stmts, constraints...)
	stmts = append(stmts, indexes...)
	stmts = append(stmts, triggers...)
	with := ""
	if len(options) > 0 {
		with = " WITH (" + strings.Join(options, ", ") + ")"
	}
	for i := range n {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE recipients_p%d PARTITION OF recipients FOR VALUES WITH (MODULUS %d, REMAINDER %d)%s`, i, n, i, with))
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("partition recipients: %s: %w", s, err)
		}
	}
	return tx.Commit(ctx)
}
