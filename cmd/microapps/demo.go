package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zapcore"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/pgcluster"
	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/replica"
	"github.com/microapps/microapps/store"
)

// The demo organisation: two functional groups on two simulated brands, four
// people. Alice and Bob answer surveys; Carol and Dave run them.
var demoUsers = []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}

// demoPlatformAdmin runs the console (/console) in the demo.
const demoPlatformAdmin = "pat@example.com"

type demoGroup struct {
	name, brandID, icon, admin string
	seed                       int64
	surveys, recipients        int
}

var demoGroups = []demoGroup{
	{name: "Sales", brandID: "demo-sales", icon: "chart", admin: "carol@example.com", seed: 11, surveys: 14, recipients: 900},
	{name: "Customer Success", brandID: "demo-cs", icon: "people", admin: "dave@example.com", seed: 12, surveys: 10, recipients: 700},
}

// demoEncryptionKey seals demo tokens when MICROAPPS_ENCRYPTION_KEYS is unset.
// It is derived from a fixed phrase so a second demo run can open what the
// first sealed; it protects nothing and is never used by serve.
func demoEncryptionKey() string {
	sum := sha256.Sum256([]byte("microapps demo key: not a secret, never use outside the demo"))
	return "demo:" + base64.StdEncoding.EncodeToString(sum[:])
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return runDemoWith(ctx, args, getenv, stdout, envDefault("MICROAPPS_DATABASE_URL"))
}

// runDemoWith runs the demo; defaultDatabaseURL is where it looks for a
// PostgreSQL when MICROAPPS_DATABASE_URL is unset (tests point it elsewhere).
func runDemoWith(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, defaultDatabaseURL string) error {
	if len(args) != 0 {
		return errors.New("demo takes no arguments")
	}
	adminToken := "demo-admin-" + randomHex(12)
	env := func(name string) string {
		switch name {
		case "MICROAPPS_DATABASE_URL":
			if v := getenv(name); v != "" {
				return v
			}
			return defaultDatabaseURL
		case "MICROAPPS_AUTH_MODE":
			if v := getenv(name); v != "" {
				return v
			}
			return "dev"
		case "MICROAPPS_ENCRYPTION_KEYS":
			if v := getenv(name); v != "" {
				return v
			}
			return demoEncryptionKey()
		case "MICROAPPS_ADMIN_TOKENS":
			return adminToken
		case "MICROAPPS_PLATFORM_ADMINS":
			return strings.Trim(getenv(name)+","+demoPlatformAdmin, ",")
		case "MICROAPPS_QUALTRICS_ALLOWED_HOSTS":
			return strings.Trim(getenv(name)+",127.0.0.1", ",")
		case "MICROAPPS_HTTP_ADDR":
			if v := getenv(name); v != "" {
				return v
			}
			return "127.0.0.1:8080"
		case "MICROAPPS_PUBLIC_URL":
			// The simulator posts its events here, so it must be this server.
			if v := getenv(name); v != "" {
				return v
			}
			addr := getenv("MICROAPPS_HTTP_ADDR")
			if addr == "" {
				addr = "127.0.0.1:8080"
			}
			if strings.HasPrefix(addr, ":") {
				addr = "127.0.0.1" + addr
			}
			return "http://" + addr
		}
		return getenv(name)
	}
	cfg, err := loadConfig(env, useDemo)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("microapps demo %s — preparing (Ctrl-C stops everything)", buildVersion())

	db, err := openDemoDatabase(ctx, cfg.DatabaseURL, strings.TrimSpace(getenv("MICROAPPS_DATABASE_URL")) != "", say)
	if err != nil {
		return err
	}
	defer db.close(say)
	cfg.DatabaseURL = db.url
	if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	st, err := migrations.Version(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	say("  ✓ database %s ready (%s): %s", redactURL(cfg.DatabaseURL), st, db.describe())

	// The simulated Qualtrics, on loopback only.
	now := time.Now()
	var brands []*qualtricssim.Brand
	total := 0
	for _, g := range demoGroups {
		b := qualtricssim.Generate(g.seed, qualtricssim.Spec{BrandID: g.brandID, Surveys: g.surveys,
			Recipients: g.recipients, Emails: demoUsers, Now: now})
		brands = append(brands, b)
		for _, d := range b.Distributions {
			total += len(d.Recipients)
		}
	}
	sim := qualtricssim.New(qualtricssim.Options{Brands: brands})
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go simSrv.Serve(simLn) //nolint:errcheck // closed on shutdown
	defer simSrv.Close()
	simURL := "http://" + simLn.Addr().String() + "/API/v3/"
	say("  ✓ simulated Qualtrics at %s: %d brands, %d recipient rows", simURL, len(brands), total)

	log := newLogger(&prefixWriter{w: stdout, prefix: "    "}, true, zapcore.WarnLevel)
	defer log.Sync() //nolint:errcheck
	opts := cfg.replicaOptions()
	opts.DevUsers = append(slices.Clip(demoUsers), demoPlatformAdmin)
	a, err := replica.New(ctx, opts, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := forgetDemoIntegrations(ctx, a.Store()); err != nil {
		return err
	}

	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		return err
	}
	base := "http://" + addr
	say("  ✓ serving on %s", base)

	client := &demoClient{base: base + "/api/v1", token: adminToken, http: &http.Client{Timeout: 60 * time.Second}}
	ids := make([]string, len(demoGroups))
	for i, g := range demoGroups {
		var created struct {
			ID string `json:"id"`
		}
		body := map[string]any{"name": g.name, "functionalGroup": g.name, "icon": g.icon, "baseUrl": simURL,
			"token": brands[i].Users[0].Tokens[0], "logging": map[string]any{"enabled": true},
			// Sales shows real-time events: a finished survey leaves the list at once.
			"events": map[string]any{"enabled": i == 0}}
		if err := client.call(ctx, "POST", "/integrations", body, &created); err != nil {
			return fmt.Errorf("register %s: %w", g.name, err)
		}
		ids[i] = created.ID
		if err := client.call(ctx, "PUT", "/integrations/"+created.ID+"/brand-admins/"+url.PathEscape(g.admin), nil, nil); err != nil {
			return err
		}
		say("  ✓ registered integration %q (Brand Admin %s)", g.name, g.admin)
	}
	for i, g := range demoGroups {
		run, err := client.waitSync(ctx, ids[i], microapps.SyncFull, func(s string) { say("    … %s: %s", g.name, s) })
		if err != nil {
			return fmt.Errorf("first sync of %s: %w", g.name, err)
		}
		say("  ✓ first full sync of %s: %d surveys, %d distributions, %d recipients, %d API calls", g.name,
			run.Surveys, run.Distributions, run.Recipients, run.APICalls)
	}

	// Something happens in Qualtrics after the first sync, so the incremental
	// sync has news: Alice gets a new survey; Bob's invitation bounced.
	// Dated now, after the first sync started: an invitation dated before it
	// existed already then, and its first read is silent.
	if n, err := demoNews(sim, brands[0].ID, time.Now().UTC()); err != nil {
		say("  ! could not stage a change in the simulator: %v", err)
	} else {
		say("  ✓ staged a change in Qualtrics: a new survey for %d people (bob's invitation bounced: Survey results shows it, bob gets nothing)", n)
	}
	for i, g := range demoGroups {
		run, err := client.waitSync(ctx, ids[i], microapps.SyncIncremental, func(s string) { say("    … %s: %s", g.name, s) })
		if err != nil {
			return fmt.Errorf("incremental sync of %s: %w", g.name, err)
		}
		say("  ✓ incremental sync of %s: %d notifications, %d API calls", g.name, run.Notifications, run.APICalls)
	}

	say("")
	say("microapps is running at %s", base)
	say("  sign in as one of (dev sign-in, no password):")
	say("    alice@example.com, bob@example.com  — employees with surveys to answer")
	say("    carol@example.com                   — Brand Admin of Sales")
	say("    dave@example.com                    — Brand Admin of Customer Success")
	say("    %s                     — platform admin: the console at %s/console", demoPlatformAdmin, base)
	say("  admin API: curl -H 'Authorization: Bearer %s' %s/api/v1/integrations", adminToken, base)
	say("  simulated Qualtrics: %s", simURL)
	say("Press Ctrl-C to stop.")

	select {
	case <-ctx.Done():
		stopServe()
		return <-served
	case err := <-served:
		return err
	}
}

// demoNews adds a survey with one invitation to the demo users in the
// simulator and returns how many people received it. Bob's invitation
// bounced: Brand Admins see him as bounced in Survey results, and he gets no
// notice and nothing in My active surveys.
func demoNews(sim *qualtricssim.Server, brandID string, now time.Time) (int, error) {
	sv, err := sim.AddSurvey(brandID, qualtricssim.Survey{Name: "Quarterly pulse: how are we doing?", IsActive: true,
		CreationDate: now, LastModifiedDate: now, StartDate: now, EndDate: now.Add(10 * 24 * time.Hour)})
	if err != nil {
		return 0, err
	}
	var rs []qualtricssim.Recipient
	for i, e := range demoUsers[:2] {
		first := strings.ToUpper(e[:1]) + e[1:strings.Index(e, "@")]
		status := "Success"
		if e == "bob@example.com" {
			status = "HardBounce"
		}
		rs = append(rs, qualtricssim.Recipient{Email: e, FirstName: first, LastName: "Demo", Status: status,
			SentAt: now, LinkExpiration: now.Add(time.Duration(7+i) * 24 * time.Hour)})
	}
	_, err = sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, RequestType: "Invite", SendDate: now,
		LinkExpiration: now.Add(7 * 24 * time.Hour), Headers: qualtricssim.Headers{FromName: "People team",
			FromEmail: "noreply@example.com", Subject: "Quarterly pulse"}, Recipients: rs})
	return len(rs) - 1, err
}

// forgetDemoIntegrations removes integrations left by an earlier demo run:
// their simulator is gone. Only the demo's own brands are touched.
func forgetDemoIntegrations(ctx context.Context, st *store.Store) error {
	var brandIDs []string
	for _, g := range demoGroups {
		brandIDs = append(brandIDs, g.brandID)
	}
	_, err := st.Pool().Exec(ctx, `DELETE FROM integrations WHERE brand_id = ANY($1)`, brandIDs)
	if err != nil {
		return fmt.Errorf("demo: forget earlier demo integrations: %w", err)
	}
	return nil
}

// demoDatabase is the database the demo runs on: the server the user named
// or the one at the default URL, or a throwaway cluster of the demo's own.
type demoDatabase struct {
	url       string
	throwaway *pgcluster.Cluster // nil: not ours, left as it is
}

// openDemoDatabase picks the demo's database. A URL the user set is used as
// it is, whatever answers there. Otherwise the default URL is used when a
// server there lets the demo connect and create its database; when none
// does, the demo starts a throwaway PostgreSQL from the installed binaries.
func openDemoDatabase(ctx context.Context, dbURL string, userSet bool, say func(string, ...any)) (*demoDatabase, error) {
	if userSet {
		if err := ensureDatabase(ctx, dbURL); err != nil {
			return nil, err
		}
		return &demoDatabase{url: dbURL}, nil
	}
	probeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := ensureDatabase(probeCtx, dbURL)
	cancel()
	if err == nil {
		return &demoDatabase{url: dbURL}, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	reason, _, _ := strings.Cut(err.Error(), "\n")
	say("  · no usable PostgreSQL at the default URL (%s)", reason)
	bin, berr := pgcluster.FindBinaries()
	if berr != nil {
		return nil, fmt.Errorf("no usable PostgreSQL at %s, and %v to start a throwaway one.\n"+
			"Install PostgreSQL %d or newer (the demo then runs its own throwaway server; it need not be running):\n%s\n"+
			"or point the demo at an existing server:\n"+
			"  MICROAPPS_DATABASE_URL=postgres://user:password@host:5432/microapps microapps demo",
			redactURL(dbURL), berr, pgcluster.MinVersion, pgcluster.InstallHint)
	}
	say("  · starting a throwaway PostgreSQL %s from %s", bin.Version, bin.Dir)
	c, err := pgcluster.New(ctx, pgcluster.Options{Binaries: bin, Settings: []string{"fsync=off"}})
	if err != nil {
		return nil, fmt.Errorf("throwaway PostgreSQL: %w", err)
	}
	url, err := c.CreateDatabase(ctx, "microapps")
	if err != nil {
		_ = c.Remove()
		return nil, fmt.Errorf("throwaway PostgreSQL: %w", err)
	}
	return &demoDatabase{url: url, throwaway: c}, nil
}

func (d *demoDatabase) describe() string {
	if d.throwaway == nil {
		return "an existing server, whose data the demo keeps"
	}
	s := fmt.Sprintf("throwaway PostgreSQL %s in %s", d.throwaway.Bin.Version, d.throwaway.Dir)
	if d.throwaway.RunAs != "" {
		s += " (running as user " + d.throwaway.RunAs + ")"
	}
	return s + ", removed when the demo stops"
}

// close stops and removes a throwaway cluster; a server that is not the
// demo's own is left alone.
func (d *demoDatabase) close(say func(string, ...any)) {
	if d.throwaway == nil {
		return
	}
	dir := d.throwaway.Dir
	if err := d.throwaway.Remove(); err != nil {
		say("  ! could not remove the throwaway PostgreSQL in %s: %v", dir, err)
		return
	}
	say("  ✓ throwaway PostgreSQL stopped and %s removed", dir)
}

// ensureDatabase creates the database named in databaseURL when it does not
// exist, connecting to the server's postgres database to do so.
func ensureDatabase(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err == nil {
		return conn.Close(ctx)
	}
	u, perr := url.Parse(databaseURL)
	if perr != nil {
		return fmt.Errorf("MICROAPPS_DATABASE_URL: %w", perr)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || !strings.Contains(err.Error(), "does not exist") {
		return fmt.Errorf("cannot reach PostgreSQL at %s: %w\nStart PostgreSQL, or set MICROAPPS_DATABASE_URL", redactURL(databaseURL), err)
	}
	admin := *u
	admin.Path = "/postgres"
	aconn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at %s to create database %q: %w", redactURL(admin.String()), name, err)
	}
	defer aconn.Close(ctx)
	if _, err := aconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

type demoClient struct {
	base, token string
	http        *http.Client
}

func (c *demoClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type demoRun struct {
	ID            int64               `json:"id"`
	Kind          microapps.SyncKind  `json:"kind"`
	Status        microapps.RunStatus `json:"status"`
	APICalls      int                 `json:"apiCalls"`
	Surveys       int                 `json:"surveys"`
	Distributions int                 `json:"distributions"`
	Recipients    int                 `json:"recipients"`
	Notifications int                 `json:"notifications"`
	Error         *string             `json:"error"`
}

// waitSync asks for a sync of the kind (or joins the one queued) and waits
// for it to end, reporting progress.
func (c *demoClient) waitSync(ctx context.Context, id string, kind microapps.SyncKind, progress func(string)) (demoRun, error) {
	var run demoRun
	if err := c.call(ctx, "POST", "/integrations/"+id+"/syncs", map[string]microapps.SyncKind{"kind": kind}, &run); err != nil {
		return run, err
	}
	started := time.Now()
	deadline := started.Add(5 * time.Minute)
	last := started
	for run.Status.Active() {
		if time.Now().After(deadline) {
			return run, fmt.Errorf("sync %d still %s after 5 minutes", run.ID, run.Status)
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := c.call(ctx, "GET", fmt.Sprintf("/integrations/%s/syncs/%d", id, run.ID), nil, &run); err != nil {
			return run, err
		}
		if time.Since(last) > 3*time.Second {
			progress(fmt.Sprintf("%s sync %s (%s so far)", run.Kind, run.Status, time.Since(started).Round(time.Second)))
			last = time.Now()
		}
	}
	if run.Status != microapps.RunSucceeded {
		msg := ""
		if run.Error != nil {
			msg = *run.Error
		}
		return run, fmt.Errorf("sync %d %s: %s", run.ID, run.Status, msg)
	}
	return run, nil
}

// prefixWriter indents the demo's log lines under its progress lines.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
