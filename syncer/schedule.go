package syncer

import (
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// DueKind says which sync an integration needs at now, if any:
//   - none unless its status is active (paused and error are skipped);
//   - a full one at once while it has never had a successful full sync, window
//     or not (a new integration is synced straight away; after a failure, when
//     its retry time comes);
//   - a full one when next_full_sync_at has come and now is inside its full
//     sync window (when it has one);
//   - otherwise an incremental one when next_incremental_sync_at has come.
//
// An invalid window does not block syncs: it is treated as no window.
func DueKind(in store.Integration, now time.Time) (microapps.SyncKind, bool) {
	if in.Status != microapps.IntegrationActive {
		return "", false
	}
	due := func(t *time.Time) bool { return t == nil || !t.After(now) }
	if in.FirstFullSyncAt == nil {
		return microapps.SyncFull, due(in.NextFullSyncAt)
	}
	if due(in.NextFullSyncAt) {
		inside, err := in.FullSyncWindow.Contains(now)
		if inside || err != nil {
			return microapps.SyncFull, true
		}
	}
	if due(in.NextIncrementalSyncAt) {
		return microapps.SyncIncremental, true
	}
	return "", false
}
