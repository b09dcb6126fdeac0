package qualtricssim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Main runs the simulator as a command (microapps sim): it generates the brands, listens on
// --addr, prints the base URL and the credentials it accepts, and serves until ctx is cancelled.
// Its output lines are stable so scripts can pick them apart:
//
//	url http://127.0.0.1:9090/API/v3/
//	brand <brandId> token <token> accountType UT_BRANDADMIN
//	user <brandId> token <token> accountType UT_FULLUSER
//	oauth <brandId> clientId <id> clientSecret <secret> tokenUrl http://127.0.0.1:9090/oauth2/token
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	seed := fs.Int64("seed", 1, "seed of the generated data and of fault injection")
	surveys := fs.Int("surveys", 50, "surveys per brand")
	recipients := fs.Int("recipients", 0, "recipient rows per brand (default 50 per survey)")
	brands := fs.Int("brands", 2, "number of brands")
	emails := fs.String("emails", "", "comma-separated emails to include as recipients in every brand")
	datacenter := fs.String("datacenter", "iad1", "datacenter reported by whoami")
	latency := fs.Duration("latency", 0, "latency added to every API call")
	err500 := fs.Float64("error-rate", 0, "share of API calls answered 500")
	err504 := fs.Float64("timeout-rate", 0, "share of API calls answered 504")
	truncate := fs.Float64("truncate-rate", 0, "share of 200 answers cut in half")
	proxy := fs.String("proxy-notice", "", "host to advertise in a 'Request proxied' notice")
	noLimits := fs.Bool("no-limits", false, "turn rate limits off")
	retryAfter := fs.Bool("retry-after", true, "send Retry-After with 429")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of OAuth access tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brands < 1 || *surveys < 1 || *recipients < 0 {
		return errors.New("sim: --brands and --surveys must be positive, --recipients not negative")
	}
	var named []string
	for _, e := range strings.Split(*emails, ",") {
		if e = strings.TrimSpace(e); e != "" {
			named = append(named, e)
		}
	}
	now := time.Now()
	var bs []*Brand
	for i := range *brands {
		bs = append(bs, Generate(*seed+int64(i), Spec{
			BrandID: fmt.Sprintf("simbrand%d", i+1), Datacenter: *datacenter, Surveys: *surveys,
			Recipients: *recipients, Emails: named, Now: now,
		}))
	}
	limits := DefaultLimits()
	limits.Disabled = *noLimits
	limits.RetryAfter = *retryAfter
	sim := New(Options{Brands: bs, Seed: *seed, AccessTokenTTL: *ttl, Limits: &limits})
	sim.SetFaults(Faults{ErrorRate500: *err500, ErrorRate504: *err504, TruncateRate: *truncate, Latency: *latency, ProxyNoticeHost: *proxy})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sim: listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "url %s/API/v3/\n", base)
	for _, b := range bs {
		for _, u := range b.Users {
			kind := "user"
			if u.AccountType == AccountBrandAdmin {
				kind = "brand"
			}
			for _, t := range u.Tokens {
				fmt.Fprintf(stdout, "%s %s token %s accountType %s\n", kind, b.ID, t, u.AccountType)
			}
		}
		for _, c := range b.OAuthClients {
			fmt.Fprintf(stdout, "oauth %s clientId %s clientSecret %s tokenUrl %s/oauth2/token\n", b.ID, c.ClientID, c.ClientSecret, base)
		}
	}

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim: serve: %w", err)
	}
	return nil
}
