package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/store/storetest"
)

// Issue 36: a vetoed run says what it would have removed and offers to
// remove it anyway; the button queues a full sync that overrides the veto,
// audited with the admin's email.
func TestConsoleLetsAVetoedRemovalThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	h := f.consoleServerWith(t, storetest.QueuedSyncs{Store: f.store})
	if _, err := f.store.Pool().Exec(ctx, `UPDATE sync_runs SET status = 'succeeded' WHERE integration_id = $1 AND status IN ('queued', 'running')`, intA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Pool().Exec(ctx, `INSERT INTO sync_runs (integration_id, kind, status, trigger, started_at, finished_at,
		veto_decided, vetoed, removals, warnings) VALUES ($1, 'full', 'succeeded', 'schedule', $2, $2, true, true,
		'{"surveys": 6, "distributions": 12, "recipients": 42}', '["vetoed: …"]')`, intA, testNow.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	base := "/console/integrations/" + intA
	doc := parse(t, get(t, h, platformAdmin, base))
	vetoed := doc.Find(`[data-testid="run-vetoed"]`)
	if vetoed.Length() != 1 || !strings.Contains(vetoed.Text(), "6 surveys, 12 distributions and 42 recipients") {
		t.Fatalf("the vetoed run does not say what it held back: %q", vetoed.Text())
	}
	if doc.Find(`[data-testid="override-veto"]`).Length() != 1 {
		t.Fatal("no button to remove them anyway")
	}
	if tag := doc.Find(`[data-testid="sync-run"]`).First().Text(); !strings.Contains(tag, "Vetoed") {
		t.Errorf("the run is not tagged vetoed: %q", tag)
	}
	list := parse(t, get(t, h, platformAdmin, "/console"))
	if !strings.Contains(list.Text(), "Vetoed") {
		t.Error("the console's list does not show the vetoed integration")
	}

	rec := postForm(t, h, platformAdmin, base+"/syncs", url.Values{"kind": {"full"}, "overrideVeto": {"on"}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("override: %d %s", rec.Code, rec.Body.String())
	}
	var kind string
	var override bool
	if err := f.store.Pool().QueryRow(ctx, `SELECT kind, override_veto FROM sync_runs WHERE integration_id = $1 AND status = 'queued'`, intA).
		Scan(&kind, &override); err != nil {
		t.Fatal(err)
	}
	if kind != "full" || !override {
		t.Errorf("queued a %s run, override %v", kind, override)
	}
	audit := parse(t, get(t, h, platformAdmin, "/console/audit"))
	if !strings.Contains(strings.Join(texts(audit.Find(`[data-testid="audit-event"] th`)), ","), "sync.override_veto") {
		t.Error("the override is not audited")
	}
	rec = postForm(t, h, platformAdmin, base+"/syncs", url.Values{"kind": {"incremental"}, "overrideVeto": {"on"}})
	if rec.Code != http.StatusConflict {
		t.Errorf("an incremental with overrideVeto: %d", rec.Code)
	}
}
