// Package reliability holds the service's reliability and security suite:
// tests only, against real PostgreSQL and the Qualtrics simulator, that prove
// the service loses nothing, duplicates nothing and leaks nothing when
// Qualtrics misbehaves, the database drops connections or restarts, a replica
// dies mid-sync, users probe other tenants' data or send hostile input, and
// page traffic runs for minutes while syncs work.
//
// RELIABILITY.md at the repository root lists each scenario, what it proves
// and the figures measured by these tests. Slow parts are skipped under
// -short; `go test ./reliability/ -soak=5m` runs the load test for five
// minutes instead of the default 20 seconds.
package reliability
