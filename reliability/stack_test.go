package reliability

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/microapps/microapps/api"
	"github.com/microapps/microapps/notify"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer"
	"github.com/microapps/microapps/web"
)

// stack is one replica assembled in-process the way `microapps serve` wires
// it (cmd/microapps/serve.go): store, notifier, syncer and River workers,
// the admin API, the pages and /api/v1/me. Package main cannot be imported,
// so tests that need the real binary start it (see binary_test.go); the
// others use this, which lets them choose the logger and the client's
// back-off.
type stack struct {
	st       *store.Store
	kr       *seal.Keyring
	sy       *syncer.Syncer
	notifier *notify.Notifier
	river    *river.Client[pgx.Tx]
	web      *web.Server
	handler  http.Handler
	srv      *httptest.Server
}

type stackOptions struct {
	log     *zap.Logger // default: nop
	workers int         // River workers; 0 = web only
	// clientConfig adjusts the Qualtrics client; default fastClient.
	clientConfig func(*qualtrics.Config)
	allowed      []string // Qualtrics hosts; default 127.0.0.1
}

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
	s := &stack{st: st, kr: kr}
	s.notifier = notify.New(notify.Options{Store: st, Keyring: kr, Log: o.log.Named("notify")})
	sy, err := syncer.New(syncer.Options{Store: st, Keyring: kr, AllowedHosts: o.allowed, Notifier: s.notifier,
		Log: o.log.Named("syncer"), ClientConfig: o.clientConfig,
		AfterSync: func(ctx context.Context, in store.Integration, _ *qualtrics.Client, first bool) (int, error) {
			if first {
				return 0, nil
			}
			return s.notifier.CheckWindows(ctx, in.ID, time.Now())
		}})
	if err != nil {
		t.Fatal(err)
	}
	s.sy = sy
	workers := river.NewWorkers()
	s.notifier.Register(workers)
	sy.Register(workers)
	rcfg := &river.Config{
		Logger:               slog.New(zapslog.NewHandler(o.log.Named("river").Core(), zapslog.WithName("river"))),
		Workers:              workers,
		JobTimeout:           15 * time.Minute,
		RescueStuckJobsAfter: 16 * time.Minute,
	}
	if o.workers > 0 {
		rcfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.workers}}
		rcfg.FetchCooldown = 50 * time.Millisecond
		rcfg.FetchPollInterval = 100 * time.Millisecond
	}
	rc, err := river.NewClient(riverpgxv5.New(st.Pool()), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	s.river = rc
	s.notifier.SetRiver(rc)
	sy.SetRiver(rc)
	s.web, err = web.New(web.Options{Store: st, Log: o.log.Named("web"), AuthMode: web.AuthHeader,
		AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/api/v1/me", s.web.MeAPI())
	r.Mount("/", s.web.Handler())
	r.Mount("/api/v1", api.New(api.Options{Store: st, Syncs: sy, Keyring: kr, AdminTokens: []string{adminToken},
		AllowedHosts: o.allowed, Log: o.log.Named("api"), VerifyTimeout: 10 * time.Second}))
	s.handler = r
	s.srv = httptest.NewServer(r)
	t.Cleanup(s.srv.Close)
	if o.workers > 0 {
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
func (s *stack) trigger(t testing.TB, integrationID, kind string) store.SyncRun {
	t.Helper()
	run, _, err := s.sy.Trigger(context.Background(), integrationID, kind, "test")
	if err != nil {
		t.Fatal(err)
	}
	return run
}
