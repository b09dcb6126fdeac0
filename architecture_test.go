package microapps_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers says, for each package of the module (by its path inside it; "" is
// the domain at the root), which packages of the module it may import. The
// arrows only point down: the domain imports nothing, the leaf helpers only
// the domain, the adapters (store, qualtrics) the helpers, the services the
// adapters, the front ends (api, web) the admin service, and only the
// composition root (replica) and the command see everything.
// docs/ARCHITECTURE.md draws the same picture.
var layers = map[string][]string{
	// The domain and the leaf helpers.
	"":                 {},
	"internal/links":   {},
	"internal/budget":  {},
	"internal/problem": {},
	"internal/words":   {"", "internal/links"},
	"seal":             {},
	"migrations":       {},
	// Adapters: PostgreSQL and Qualtrics.
	"store":     {""},
	"qualtrics": {""},
	// Services.
	"manage":    {"", "qualtrics", "seal", "store"},
	"syncer":    {"", "internal/budget", "qualtrics", "seal", "store"},
	"notify":    {"", "internal/links", "internal/words", "qualtrics", "seal", "store"},
	"events":    {"", "internal/budget", "internal/problem", "qualtrics", "seal", "store"},
	"lifecycle": {"", "internal/links", "qualtrics", "store"},
	// Front ends: each maps its own input onto the services.
	"api": {"", "internal/budget", "internal/problem", "manage", "seal", "store"},
	"web": {"", "internal/budget", "internal/links", "internal/problem", "internal/words", "store", "web/signin"},
	// The platform admin console, on the pages' kit.
	"web/console": {"", "manage", "store", "web"},
	// Sign-in's OpenID Connect side: the provider, the claims, the flow cookie.
	"web/signin": {},
	// The composition root and the command.
	"replica": {"", "api", "events", "internal/budget", "internal/links", "lifecycle", "manage", "migrations",
		"notify", "qualtrics", "seal", "store", "syncer", "web", "web/console"},
	"cmd/microapps": {"", "internal/pgcluster", "replica", "migrations", "notify", "qualtrics",
		"qualtrics/qualtricssim", "seal", "store", "syncer", "web", "web/signin"},
	// Operations as code: they stand alone.
	"deploy/grafana":    {},
	"deploy/prometheus": {},
	// Test support: used by tests (and the demo), never by the product.
	"qualtrics/qualtricssim": {},
	"internal/pgcluster":     {},
	"internal/browsertest":   {},
	"web/webtest":            {"store", "store/storetest"},
	"store/storetest":        {"", "migrations", "store"},
	"syncer/synctest":        {"", "qualtrics", "qualtrics/qualtricssim", "store"},
	// Measurements and fault tests drive the whole product.
	"bench/scale": {"", "replica", "migrations", "qualtrics", "qualtrics/qualtricssim", "seal", "store",
		"store/storetest"},
	"reliability": {},
}

const module = "github.com/microapps/microapps"

// TestImportsOnlyPointDown fails on a package that imports one of the module
// it may not (an arrow running back up, or across), and on a new package
// that has no place in the layers yet.
func TestImportsOnlyPointDown(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := rel(fields[0])
		allowed, known := layers[pkg]
		if !known {
			t.Errorf("package %q has no place in the layers: add it to architecture_test.go and docs/ARCHITECTURE.md", fields[0])
			continue
		}
		for _, imp := range fields[1:] {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if !slices.Contains(allowed, rel(imp)) {
				t.Errorf("%s imports %s, which its layer may not (allowed: %q)", fields[0], imp, allowed)
			}
		}
	}
}

func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}
