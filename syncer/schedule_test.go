package syncer_test

import (
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

func TestDueKind(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // 14:00 in Paris
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	outside := &microapps.SyncWindow{Start: "00:00", End: "04:00", TimeZone: "Europe/Paris"}
	inside := &microapps.SyncWindow{Start: "13:00", End: "15:00", TimeZone: "Europe/Paris"}
	cases := []struct {
		name     string
		in       store.Integration
		wantKind microapps.SyncKind
		wantDue  bool
	}{
		{"a new integration gets a full sync at once", store.Integration{Status: "active"}, microapps.SyncFull, true},
		{"a new integration gets its first full sync even outside its window", store.Integration{Status: "active", Schedule: microapps.Schedule{FullSyncWindow: outside}}, microapps.SyncFull, true},
		{"no incremental before the first successful full sync", store.Integration{Status: "active", NextFullSyncAt: &future, NextIncrementalSyncAt: &past}, microapps.SyncFull, false},
		{"a paused integration is skipped", store.Integration{Status: "paused"}, "", false},
		{"an integration in error is skipped", store.Integration{Status: "error", FirstFullSyncAt: &past, NextIncrementalSyncAt: &past}, "", false},
		{"a due full sync runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, NextIncrementalSyncAt: &past}, microapps.SyncFull, true},
		{"a due full sync waits for its window, an incremental runs meanwhile", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, NextIncrementalSyncAt: &past, Schedule: microapps.Schedule{FullSyncWindow: outside}}, microapps.SyncIncremental, true},
		{"a due full sync inside its window runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &past, Schedule: microapps.Schedule{FullSyncWindow: inside}, NextIncrementalSyncAt: &future}, microapps.SyncFull, true},
		{"a due incremental runs", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &future, NextIncrementalSyncAt: &past}, microapps.SyncIncremental, true},
		{"nothing is due", store.Integration{Status: "active", FirstFullSyncAt: &past, NextFullSyncAt: &future, NextIncrementalSyncAt: &future}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, due := syncer.DueKind(tc.in, now)
			if due != tc.wantDue || (due && kind != tc.wantKind) {
				t.Errorf("DueKind = %q, %v; want %q, %v", kind, due, tc.wantKind, tc.wantDue)
			}
		})
	}
}
