package pgcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// binariesOrSkip returns the installed binaries; without any the test is
// skipped with a message, or fails under CI, where they are installed.
func binariesOrSkip(t *testing.T) Binaries {
	t.Helper()
	b, err := FindBinaries()
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skipf("%v: install PostgreSQL's server package to run this test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster: skipped under -short")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, Options{Binaries: binariesOrSkip(t), Settings: []string{"fsync=off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove() })
	if c.Bin.Major < MinVersion {
		t.Fatalf("binaries %+v", c.Bin)
	}
	url, err := c.CreateDatabase(ctx, "lifecycle")
	if err != nil {
		t.Fatal(err)
	}
	query := func() (string, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var enc string
		err = conn.QueryRow(ctx, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()").Scan(&enc)
		return enc, err
	}
	if enc, err := query(); err != nil || enc != "UTF8" {
		t.Fatalf("query: %q %v", enc, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := query(); err == nil {
		t.Fatal("still answering after Stop")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := query(); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	pid, dir := c.PID(), c.Dir
	if pid == 0 || !ProcessRunning(pid) {
		t.Fatalf("postmaster pid %d", pid)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Remove: %v", dir, err)
	}
	if ProcessRunning(pid) {
		t.Errorf("postmaster %d still runs after Remove", pid)
	}
	if err := c.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestFindBinariesPrefersTheNewest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"12.9", "14.3", "16.1", "16.10"} {
		dir := filepath.Join(root, "pg"+v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "pg_ctl"} {
			script := "#!/bin/sh\necho \"" + name + " (PostgreSQL) " + v + "\"\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	var found []Binaries
	dirs, _ := filepath.Glob(filepath.Join(root, "pg*", "bin"))
	for _, d := range dirs {
		if b, err := probe(d); err == nil {
			found = append(found, b)
		}
	}
	if len(found) != 3 {
		t.Fatalf("probe kept %+v; 12.9 is too old, the rest should pass", found)
	}
	best := found[0]
	for _, b := range found[1:] {
		if compareVersions(b.Version, best.Version) > 0 {
			best = b
		}
	}
	if best.Version != "16.10" || best.Major != 16 {
		t.Fatalf("newest = %+v, want 16.10", best)
	}
}

// BenchmarkNewAndRemove measures what the demo's fallback costs: initdb,
// start, and stop and removal.
func BenchmarkNewAndRemove(b *testing.B) {
	bin, err := FindBinaries()
	if err != nil {
		b.Skip(err)
	}
	var up time.Duration
	for b.Loop() {
		start := time.Now()
		c, err := New(context.Background(), Options{Binaries: bin, Settings: []string{"fsync=off"}})
		if err != nil {
			b.Fatal(err)
		}
		up += time.Since(start)
		if err := c.Remove(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(up.Seconds()*1000/float64(b.N), "ms-to-ready/op")
}

func TestStandbyReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL clusters: skipped under -short")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, Options{Binaries: binariesOrSkip(t), Settings: []string{"fsync=off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove() })
	start := time.Now()
	s, err := c.NewStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove() })
	t.Logf("standby up in %v", time.Since(start).Round(time.Millisecond))
	if s.Port == c.Port || s.Dir == c.Dir {
		t.Fatalf("standby shares the primary's port or directory: %d %s", s.Port, s.Dir)
	}
	primary, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(context.Background())
	standby, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close(context.Background())
	var inRecovery bool
	if err := standby.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("standby in recovery = %v, %v", inRecovery, err)
	}
	if _, err := primary.Exec(ctx, "CREATE TABLE replicated AS SELECT 42 AS answer"); err != nil {
		t.Fatal(err)
	}
	for {
		var answer int
		err := standby.QueryRow(ctx, "SELECT answer FROM replicated").Scan(&answer)
		if err == nil && answer == 42 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the standby never replayed the primary's table: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := standby.Exec(ctx, "CREATE TABLE refused (x int)"); err == nil {
		t.Fatal("the standby accepted a write")
	}
}
