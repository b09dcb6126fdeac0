package reliability

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/web"
)

// stack is one replica built in-process by replica, the code
// `microapps serve` runs: store, notifier, syncer, event service and River
// workers, the admin API, the pages, /api/v1/me, /hooks/qualtrics, /metrics,
// /livez and /readyz behind the real middleware. Tests that need the real
// binary start it (see binary_test.go); the others use this, which lets them
// choose the logger and the client's back-off.
type stack struct {
	st       *store.Store
	kr       *seal.Keyring
	sy       *syncer.Syncer
	notifier *notify.Notifier
	river    *river.Client[pgx.Tx]
	web      *web.Server
	handler  http.Handler // the replica's whole router, middleware included
	srv      *httptest.Server
}

type stackOptions struct {
	log     *zap.Logger // default: nop
	workers int         // River workers; 0 = web only
	// clientConfig adjusts the Qualtrics client; default fastClient.
	clientConfig func(*qualtrics.Config)
	allowed      []string // Qualtrics hosts; default 127.0.0.1
	publicURL    *url.URL // MICROAPPS_PUBLIC_URL; default none (http)
}

// newStack builds a replica on st, which the test keeps owning: two stacks
// may share one database, and a test may kill its sessions. River polls
// fast, and the leader's periodic jobs (scheduler, notification check,
// purge) are left out: these tests queue every sync themselves.
func newStack(t testing.TB, st *store.Store, kr *seal.Keyring, o stackOptions) *stack {
	t.Helper()
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if o.clientConfig == nil {
		o.clientConfig = fastClient
	}
	if o.allowed == nil {
		o.allowed = []string{"127.0.0.1"}
	}
	rep, err := replica.New(context.Background(), replica.Options{
		Store:                 st,
		Keyring:               kr,
		AdminTokens:           []string{adminToken},
		AuthMode:              web.AuthHeader,
		AuthHeader:            "X-Forwarded-Email",
		TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		QualtricsAllowedHosts: o.allowed,
		PublicURL:             o.publicURL,
		Workers:               o.workers,
		QualtricsClientConfig: o.clientConfig,
		FetchCooldown:         50 * time.Millisecond,
		FetchPollInterval:     100 * time.Millisecond,
		NoPeriodicJobs:        true,
	}, o.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rep.Close)
	s := &stack{st: st, kr: kr, sy: rep.Syncer(), notifier: rep.Notifier(), river: rep.River(), web: rep.Web(),
		handler: rep.Routes()}
	s.srv = httptest.NewServer(s.handler)
	t.Cleanup(s.srv.Close)
	if o.workers > 0 {
		rc := s.river
		ctx, cancel := context.WithCancel(context.Background())
		if err := rc.Start(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stopCtx, c := context.WithTimeout(context.Background(), 10*time.Second)
			defer c()
			if err := rc.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
				_ = rc.StopAndCancel(stopCtx)
			}
			cancel()
		})
	}
	return s
}

// trigger queues a sync through River, as the admin API and the scheduler do.
func (s *stack) trigger(t testing.TB, integrationID string, kind microapps.SyncKind) store.SyncRun {
	t.Helper()
	run, _, err := s.sy.Trigger(context.Background(), integrationID, kind, "test")
	if err != nil {
		t.Fatal(err)
	}
	return run
}
