package api_test

import (
	"fmt"
	"net/http"
	"testing"
)

// A write that names events.enabled queues the subscription work once the
// integration is stored; other writes, and a creation with events off, do not.
func TestEventsSettingQueuesSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	calls := func() string {
		e.syncs.mu.Lock()
		defer e.syncs.mu.Unlock()
		return fmt.Sprint(e.syncs.subscriptions)
	}
	off := e.create(map[string]any{"events": map[string]any{"enabled": false}})["id"].(string)
	if got := calls(); got != "[]" {
		t.Fatalf("after creating with events off: %s", got)
	}
	for _, body := range []map[string]any{
		{"events": map[string]any{"enabled": true}},
		{"name": "Renamed"},
		{"events": map[string]any{"enabled": false}},
	} {
		if r := e.do("PATCH", "/integrations/"+off, body); r.status != http.StatusOK {
			t.Fatalf("PATCH %v: %d %s", body, r.status, r.body)
		}
	}
	if got, want := calls(), fmt.Sprint([]string{off + ":on", off + ":off"}); got != want {
		t.Fatalf("after PATCHes: %s, want %s", got, want)
	}
	// A PATCH that fails validation stores nothing and queues nothing.
	if r := e.do("PATCH", "/integrations/"+off, map[string]any{"events": map[string]any{"enabled": true}, "icon": ""}); r.status == http.StatusOK {
		t.Fatalf("an invalid PATCH was accepted: %s", r.body)
	}
	on := e.create(map[string]any{"events": map[string]any{"enabled": true}})["id"].(string)
	if got, want := calls(), fmt.Sprint([]string{off + ":on", off + ":off", on + ":on"}); got != want {
		t.Fatalf("after creating with events on: %s, want %s", got, want)
	}
}
