// Package promrules holds microapps' Prometheus rules (recording.yml,
// alerts.yml) and their promtool unit tests (tests.yml). It has no code: its
// test runs promtool on the files, so `go test ./...` checks them too, and
// checks that every alert is tested firing and not firing and has a section
// in docs/RUNBOOK.md.
package promrules
