// Package pgcluster runs a throwaway PostgreSQL cluster: initdb into a
// temporary directory (trust authentication, UTF-8), pg_ctl start on a free
// loopback port with its Unix socket in that directory, and on Remove a stop
// and the removal of the directory. `microapps demo` starts one when no
// usable PostgreSQL answers; tests that stop and restart PostgreSQL use one
// so they never touch a shared server.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the database superuser of every cluster; it connects without
// a password, over loopback or the cluster's socket only.
const Superuser = "postgres"

// MinVersion is the oldest PostgreSQL major version the product supports.
const MinVersion = 13

// SearchGlobs are the usual places of PostgreSQL's server binaries besides
// PATH: Debian and Ubuntu, Homebrew on Intel and on Apple silicon, and the
// PGDG packages of Red Hat-like systems.
var SearchGlobs = []string{
	"/usr/lib/postgresql/*/bin",
	"/usr/local/opt/postgresql*/bin",
	"/opt/homebrew/opt/postgresql*/bin",
	"/usr/pgsql-*/bin",
}

// ErrNoBinaries means no initdb and pg_ctl of a supported version were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found")

// InstallHint says in one line per system how to install the binaries.
const InstallHint = `  Debian/Ubuntu: sudo apt-get install postgresql
  macOS:         brew install postgresql@17`

// Binaries is one installation's server programs.
type Binaries struct {
	Dir     string // holds initdb, pg_ctl and postgres
	Version string // as initdb --version says, e.g. "15.14"
	Major   int
}

// FindBinaries returns the installation to use: the one on PATH, else the
// newest found in SearchGlobs. Versions older than MinVersion are skipped.
func FindBinaries() (Binaries, error) {
	var candidates []Binaries
	if p, err := exec.LookPath("initdb"); err == nil {
		if b, err := probe(filepath.Dir(p)); err == nil {
			return b, nil
		}
	}
	for _, g := range SearchGlobs {
		dirs, _ := filepath.Glob(g)
		for _, d := range dirs {
			if b, err := probe(d); err == nil {
				candidates = append(candidates, b)
			}
		}
	}
	if len(candidates) == 0 {
		return Binaries{}, fmt.Errorf("%w (PostgreSQL %d or newer) on PATH or in %s", ErrNoBinaries, MinVersion, strings.Join(SearchGlobs, ", "))
	}
	slices.SortStableFunc(candidates, func(a, b Binaries) int { return compareVersions(b.Version, a.Version) })
	return candidates[0], nil
}

// ErrNoTool means a client program the binaries' directory lacks, such as
// pg_basebackup, was not found next to them either.
var ErrNoTool = errors.New("PostgreSQL program not found")

// Tool is the path of another program of the installation, e.g.
// pg_basebackup: in Dir, else in the directory initdb links to (Debian
// puts links to a few server programs on PATH, the rest stays in
// /usr/lib/postgresql/N/bin), else on PATH.
func (b Binaries) Tool(name string) (string, error) {
	dirs := []string{b.Dir}
	if real, err := filepath.EvalSymlinks(filepath.Join(b.Dir, "initdb")); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s (looked in %s and on PATH)", ErrNoTool, name, strings.Join(dirs, ", "))
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// probe checks that dir holds usable initdb and pg_ctl and reads the version.
func probe(dir string) (Binaries, error) {
	for _, name := range []string{"initdb", "pg_ctl"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return Binaries{}, fmt.Errorf("%s: no %s", dir, name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "initdb"), "--version").Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("%s/initdb --version: %w", dir, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, fmt.Errorf("%s/initdb --version said %q", dir, bytes.TrimSpace(out))
	}
	major, _ := strconv.Atoi(m[1])
	if major < MinVersion {
		return Binaries{}, fmt.Errorf("%s is PostgreSQL %d, older than %d", dir, major, MinVersion)
	}
	v := m[1]
	if m[2] != "" {
		v += "." + m[2]
	}
	return Binaries{Dir: dir, Version: v, Major: major}, nil
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// Options shape a cluster. The zero value is a usable default.
type Options struct {
	// Binaries to run; zero: FindBinaries.
	Binaries Binaries
	// Settings are extra server settings, e.g. "fsync=off".
	Settings []string
	// StartTimeout bounds pg_ctl start and stop; zero: 60 s.
	StartTimeout time.Duration
}

// Cluster is a running (or stopped) throwaway cluster.
type Cluster struct {
	Dir  string // the temporary directory: data, socket and log
	Port int    // on 127.0.0.1
	Bin  Binaries
	// RunAs is the OS user the server runs as when this process is root
	// (initdb refuses root); empty otherwise.
	RunAs string

	data string
	opts Options
	user *osUser // nil: run as this process's user
}

// New finds the binaries (unless given), runs initdb into a new temporary
// directory and starts the server. Call Remove when done, on every path.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Binaries.Dir == "" {
		b, err := FindBinaries()
		if err != nil {
			return nil, err
		}
		opts.Binaries = b
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	c := &Cluster{Bin: opts.Binaries, opts: opts}
	u, err := serverUser()
	if err != nil {
		return nil, err
	}
	if u != nil {
		c.user, c.RunAs = u, u.name
	}
	dir, err := os.MkdirTemp("", "microapps-pg-")
	if err != nil {
		return nil, err
	}
	c.Dir, c.data = dir, filepath.Join(dir, "data")
	if c.user != nil {
		if err := os.Chown(dir, c.user.uid, c.user.gid); err != nil {
			c.Remove()
			return nil, err
		}
	}
	out, err := c.command(ctx, "initdb", "-D", c.data, "-U", Superuser, "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		c.Remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if c.Port, err = freePort(); err != nil {
		c.Remove()
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Remove()
		return nil, err
	}
	return c, nil
}

// NewStandby makes a streaming standby of c, the way an operator does with
// Debian's tools: pg_basebackup -R (a fast checkpoint, WAL streamed during
// the copy, primary_conninfo and standby.signal written) into a new
// temporary directory, started with c's settings on a free loopback port of
// its own. It replays c's WAL until it is stopped; read-only queries work on
// it at once (hot_standby is on by default). Call Remove when done: it does
// not go with c.
func (c *Cluster) NewStandby(ctx context.Context) (*Cluster, error) {
	s := &Cluster{Bin: c.Bin, RunAs: c.RunAs, opts: c.opts, user: c.user}
	dir, err := os.MkdirTemp("", "microapps-pg-standby-")
	if err != nil {
		return nil, err
	}
	s.Dir, s.data = dir, filepath.Join(dir, "data")
	if s.user != nil {
		if err := os.Chown(dir, s.user.uid, s.user.gid); err != nil {
			s.Remove()
			return nil, err
		}
	}
	basebackup, err := c.Bin.Tool("pg_basebackup")
	if err != nil {
		s.Remove()
		return nil, err
	}
	out, err := s.command(ctx, basebackup, "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", Superuser,
		"-D", s.data, "-R", "-X", "stream", "-c", "fast", "--no-sync").CombinedOutput()
	if err != nil {
		s.Remove()
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	if s.Port, err = freePort(); err != nil {
		s.Remove()
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// Start starts the server (again) on its port and waits until it accepts
// connections.
func (c *Cluster) Start(ctx context.Context) error {
	o := []string{"-p " + strconv.Itoa(c.Port), "-k " + c.Dir, "-c listen_addresses=127.0.0.1"}
	for _, s := range c.opts.Settings {
		o = append(o, "-c "+s)
	}
	if err := c.pgctl(ctx, "-w", "-t", strconv.Itoa(int(c.opts.StartTimeout.Seconds())), "-o", strings.Join(o, " "), "start"); err != nil {
		return fmt.Errorf("%w\n%s", err, c.logTail(2000))
	}
	return nil
}

// Stop stops the server the way an administrator does (fast shutdown: open
// sessions are ended) and waits until it is gone.
func (c *Cluster) Stop(ctx context.Context) error {
	return c.pgctl(ctx, "-w", "-t", strconv.Itoa(int(c.opts.StartTimeout.Seconds())), "-m", "fast", "stop")
}

// PID is the postmaster's process id, or 0 when it is not running.
func (c *Cluster) PID() int {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Remove stops the server if it runs and deletes the directory. It is safe
// to call more than once and on a half-built cluster.
func (c *Cluster) Remove() error {
	if c.Dir == "" {
		return nil
	}
	var errs []error
	if pid := c.PID(); pid > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := c.pgctl(ctx, "-w", "-t", "20", "-m", "fast", "stop"); err != nil {
			// Last resort: the postmaster takes its children down with it.
			if kerr := quit(pid); kerr != nil {
				errs = append(errs, err, kerr)
			}
		}
		cancel()
		// pg_ctl returns once the pid file is gone, a moment before the
		// process itself.
		for i := 0; i < 200 && ProcessRunning(pid); i++ {
			time.Sleep(25 * time.Millisecond)
		}
		if ProcessRunning(pid) {
			errs = append(errs, fmt.Errorf("postmaster %d still runs", pid))
		}
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, err)
	}
	c.Dir = ""
	return errors.Join(errs...)
}

// URL is the URL of database name in the cluster, password-less over TCP.
func (c *Cluster) URL(name string) string {
	return (&url.URL{Scheme: "postgres", User: url.User(Superuser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path: "/" + name, RawQuery: "sslmode=disable"}).String()
}

// CreateDatabase creates database name and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return c.URL(name), nil
}

func (c *Cluster) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(c.Bin.Dir, prog)
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = c.Dir
	// In a process group of its own, so a Ctrl-C at the terminal reaches
	// only this process, which stops the server in order after its users.
	cmd.SysProcAttr = sysProcAttr(c.user)
	return cmd
}

func (c *Cluster) pgctl(ctx context.Context, args ...string) error {
	args = append([]string{"-D", c.data, "-l", filepath.Join(c.Dir, "postgres.log")}, args...)
	out, err := c.command(ctx, "pg_ctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (c *Cluster) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
