package notify_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// adaptiveCardsDir holds the npm package that checks cards; `.ci/run`
// installs its node_modules (git-ignored) with npm ci.
const adaptiveCardsDir = "testdata/adaptivecards"

// TestTeamsCardsPassMicrosoftsAdaptiveCardsLibrary has the npm package
// adaptivecards (3.x) parse and validate each card notify posts to Teams:
// no parse or validation event, no unknown element, action or property.
func TestTeamsCardsPassMicrosoftsAdaptiveCardsLibrary(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(adaptiveCardsDir, "node_modules", "adaptivecards", "dist", "adaptivecards.js"))
	if err != nil || modErr != nil {
		msg := "the Adaptive Cards check needs node and `npm ci --prefix notify/" + adaptiveCardsDir + "` (as .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	f := newFixture(t)
	docs := map[string]json.RawMessage{}
	for _, lang := range []string{"en", "fr"} {
		_, bodies := chatWorld(t, f, "teams", lang, "Europe/Paris")
		for kind, b := range bodies {
			docs[lang+"/"+kind] = b
		}
	}
	in, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "validate.js")
	cmd.Dir = adaptiveCardsDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("validate.js: %v\n%s", err, stderr.String())
	}
	var report map[string][]string
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(report) != len(docs) {
		t.Fatalf("%d cards checked, want %d", len(report), len(docs))
	}
	for name, problems := range report {
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
	}
}
