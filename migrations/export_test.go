package migrations

import "github.com/golang-migrate/migrate/v4"

// UpTo applies the product's migrations up to version (River's are left alone).
func UpTo(databaseURL string, version uint) error {
	return withMigrate(databaseURL, func(m *migrate.Migrate) error { return m.Migrate(version) })
}
