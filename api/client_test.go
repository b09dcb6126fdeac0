package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	// The client that oapi-codegen generates imports this module; requiring it
	// here keeps it in go.mod, so the generated client builds in this module.
	_ "github.com/oapi-codegen/runtime"
)

// TestGeneratedGoClient runs the README's client example as written: the
// `go tool oapi-codegen` line generates a client from openapi.yaml, and the Go
// program, compiled against it, lists the integrations of a running API.
func TestGeneratedGoClient(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds oapi-codegen and a program: not in -short")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(readme), "<!-- client-example -->")
	example, _, ok2 := strings.Cut(example, "<!-- /client-example -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no <!-- client-example --> … <!-- /client-example --> section")
	}
	var generate []string
	for _, line := range strings.Split(example, "\n") {
		if strings.HasPrefix(line, "go tool oapi-codegen ") {
			generate = strings.Fields(line)
		}
	}
	program := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(example)
	if generate == nil || program == nil {
		t.Fatalf("README's client example lacks the go tool oapi-codegen line or the Go program:\n%s", example)
	}

	// The generated client and the program go into a package of this module
	// that exists only in a build overlay, so the test writes nothing to the
	// source tree and builds with this module's go.mod.
	tmp := t.TempDir()
	pkg := filepath.Join(root, "api", "internal", "clientexample")
	clientFile := filepath.Join(tmp, "client.gen.go")
	for i := range generate {
		switch {
		case i > 0 && generate[i-1] == "-o":
			generate[i] = clientFile
		case i == len(generate)-1:
			generate[i] = filepath.Join(root, "api", "openapi.yaml")
		}
	}
	run(t, root, "go", generate[1:]...)
	const readmeImport = `"example.com/automation/apiclient"`
	if !strings.Contains(program[1], readmeImport) {
		t.Fatalf("the README program no longer imports %s", readmeImport)
	}
	mainFile := filepath.Join(tmp, "main.go")
	src := strings.Replace(program[1], readmeImport, `"github.com/microapps/microapps/api/internal/clientexample/apiclient"`, 1)
	if err := os.WriteFile(mainFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(pkg, "apiclient", "client.gen.go"): clientFile,
		filepath.Join(pkg, "main.go"):                    mainFile,
	}})
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "list-integrations")
	run(t, root, "go", "build", "-overlay", overlayFile, "-o", bin, "./api/internal/clientexample")

	// Against the API, with one integration registered through it.
	e := newEnv(t)
	created := e.create(nil)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "MICROAPPS_URL="+e.server.URL, "MICROAPPS_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README program failed: %v\n%s", err, out)
	}
	want := created["id"].(string) + "\tCustomer Success\t" + created["status"].(string) + "\n"
	if string(out) != want {
		t.Fatalf("the README program printed %q, want %q", out, want)
	}

	// A wrong token reaches the program as the problem the API answered.
	cmd = exec.Command(bin)
	cmd.Env = append(os.Environ(), "MICROAPPS_URL="+e.server.URL, "MICROAPPS_ADMIN_TOKEN=wrong-token-0123456789")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("with a wrong token: %v\n%s", err, out)
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
