package syncer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
)

// TestOAuthIntegrationSyncsThroughTokenExpiryAndStopsWhenRevoked covers the
// second way to authenticate end to end: access tokens expire in the middle
// of a sync without failing it, a revoked client fails cleanly, and neither
// the client secret nor an access token is ever stored or logged.
func TestOAuthIntegrationSyncsThroughTokenExpiryAndStopsWhenRevoked(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var sim func() // set once the env exists
	e := newEnv(t, envOptions{logging: true, syncOpts: func(o *syncer.Options) {
		o.ClientConfig = func(c *qualtrics.Config) {
			fastClient(c)
			next := c.Observe
			c.Observe = func(ev qualtrics.RequestEvent) {
				if next != nil {
					next(ev)
				}
				// Twice during the sync, every access token the simulator issued
				// expires, as an hour-long token would at some point of a long sync.
				if n := calls.Add(1); (n == 10 || n == 40) && sim != nil {
					sim()
				}
			}
		}
	}})
	sim = e.sim.ExpireAccessTokens
	client := e.brand.OAuthClients[0]
	ctx := context.Background()
	_, err := e.st.UpdateIntegration(ctx, e.in.ID, store.AuditEvent{}, func(in *store.Integration) error {
		keyID, sealed, err := e.keyring.Seal([]byte(client.ClientSecret), []byte(in.ID))
		in.AuthMethod, in.OAuthClientID, in.OAuthScope = "oauth", client.ClientID, client.Scope
		in.SecretKeyID, in.SecretSealed = keyID, sealed
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	run := e.sync(ctx, "full")
	e.mustSucceed(run)
	e.checkMatchesSim(ctx)
	if calls.Load() < 40 {
		t.Fatalf("only %d calls: the tokens never expired mid-sync", calls.Load())
	}

	if err := e.sim.RevokeClient(client.ClientID); err != nil {
		t.Fatal(err)
	}
	e.sim.ExpireAccessTokens()
	failed := e.sync(ctx, "incremental")
	if failed.Status != "failed" {
		t.Fatalf("sync with a revoked client: %s", failed.Status)
	}
	in := e.integration()
	if in.Status != "error" || !strings.Contains(in.StatusMessage, "PATCH /api/v1/integrations/"+in.ID) {
		t.Fatalf("integration after revocation: %s %q (run error %q)", in.Status, in.StatusMessage, failed.Error)
	}

	// Nothing stored anywhere carries the secret.
	var leaks int
	err = e.st.Pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM request_logs WHERE path LIKE '%' || $1 || '%' OR request_id LIKE '%' || $1 || '%')
		+ (SELECT count(*) FROM sync_runs WHERE error LIKE '%' || $1 || '%' OR warnings::text LIKE '%' || $1 || '%')`,
		client.ClientSecret).Scan(&leaks)
	if err != nil || leaks != 0 {
		t.Fatalf("the client secret appears in %d stored rows (%v)", leaks, err)
	}
	if strings.Contains(failed.Error, client.ClientSecret) || strings.Contains(in.StatusMessage, client.ClientSecret) {
		t.Fatal("an error carries the client secret")
	}
}
