package syncer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// An admin moves the integration to another base URL while a sync runs into a
// datacenter notice: the admin's base URL stays, the notice is not followed.
func TestADatacenterNoticeKeepsABaseURLTheAdminChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var e *env
	var once sync.Once
	admins := "https://fra1.qualtrics.com/API/v3/"
	e = newEnv(t, envOptions{syncOpts: func(o *syncer.Options) {
		o.AllowedHosts = []string{"127.0.0.1", "localhost"}
		o.ClientConfig = func(cfg *qualtrics.Config) {
			fastClient(cfg)
			cfg.Observe = func(qualtrics.RequestEvent) {
				once.Do(func() {
					_, err := e.st.UpdateIntegration(ctx, e.in.ID, store.AuditEvent{Actor: "admin", Action: "integration.update"},
						func(in *store.Integration) error { in.BaseURL = admins; return nil })
					if err != nil {
						t.Error(err)
					}
				})
			}
		}
	}})
	e.sim.SetFaults(qualtricssim.Faults{ProxyNoticeHost: "localhost"})
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	if got := e.integration().BaseURL; got != admins {
		t.Errorf("base URL %s, want the admin's %s", got, admins)
	}
}
