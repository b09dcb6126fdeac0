package reliability

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Property tests run 30 cases unless -rapid.checks says otherwise: enough
	// to find a leak between tenants, short enough for every `go test`.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if !explicit {
		_ = flag.Set("rapid.checks", "30")
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// microappsBinary builds cmd/microapps once per test binary, for the tests
// that need real processes (SIGKILL, a server that outlives a database
// restart, /metrics).
func microappsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "microapps-reliability-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "microapps")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/microapps/microapps/cmd/microapps")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serveProc is one `microapps serve` process.
type serveProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *syncBuffer
	base string
	done chan struct{}
	err  error
}

// startServe starts `microapps serve` with env (plus PATH and HOME) on a
// free loopback port. It does not wait for readiness.
func startServe(t testing.TB, env map[string]string) *serveProc {
	t.Helper()
	bin := microappsBinary(t)
	port := freePort(t)
	p := &serveProc{t: t, out: &syncBuffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), fmt.Sprintf("MICROAPPS_HTTP_ADDR=127.0.0.1:%d", port)}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of serve on %s (last 4000 bytes):\n%s", p.base, tail(p.out.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitReady waits until /readyz answers 200.
func (p *serveProc) waitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("serve exited before it was ready: %v\n%s", p.err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("serve not ready after %v: %v\n%s", timeout, err, tail(p.out.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM (SIGKILL after 25 s).
func (p *serveProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(25 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process with SIGKILL, as a crashed node or an OOM kill does.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *serveProc) logs() string { return p.out.String() }

// serveEnv is the environment of a header-auth replica with the simulator's
// host allowed.
func serveEnv(dbURL, keys string, workers int) map[string]string {
	return map[string]string{
		"MICROAPPS_DATABASE_URL":            dbURL,
		"MICROAPPS_ENCRYPTION_KEYS":         keys,
		"MICROAPPS_AUTH_MODE":               "header",
		"MICROAPPS_ADMIN_TOKENS":            adminToken,
		"MICROAPPS_QUALTRICS_ALLOWED_HOSTS": "127.0.0.1",
		"MICROAPPS_WORKERS":                 fmt.Sprint(workers),
	}
}

func containsAny(s string, needles ...string) string {
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return n
		}
	}
	return ""
}
