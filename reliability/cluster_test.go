package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// cluster is a throwaway PostgreSQL cluster of one test, on its own port:
// tests that stop or restart PostgreSQL use it and never touch the shared
// server.
type cluster struct {
	t    testing.TB
	dir  string
	data string
	port int
	asPG bool // run the binaries as the postgres OS user (initdb refuses root)
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 binaries not found in %s: %v", pgBin, err)
	}
	dir, err := os.MkdirTemp("", "microapps-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, data: filepath.Join(dir, "data"), port: freePort(t), asPG: os.Geteuid() == 0}
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if c.asPG {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	if out, err := c.command(filepath.Join(pgBin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	if c.asPG {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (c *cluster) pgctl(args ...string) error {
	args = append([]string{"-D", c.data, "-l", filepath.Join(c.dir, "postgres.log")}, args...)
	out, err := c.command(filepath.Join(pgBin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

func (c *cluster) start() error {
	opts := "-p " + strconv.Itoa(c.port) + " -k " + c.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
	return c.pgctl("-w", "-t", "60", "-o", opts, "start")
}

func (c *cluster) stop() error { return c.pgctl("-w", "-t", "60", "-m", "fast", "stop") }

// url returns the URL of database name, creating it if needed.
func (c *cluster) url(name string) string {
	c.t.Helper()
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", c.port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base+"postgres?sslmode=disable")
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		c.t.Fatal(err)
	}
	return base + name + "?sslmode=disable"
}
