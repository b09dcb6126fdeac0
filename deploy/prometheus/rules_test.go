package promrules

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// promtool finds Prometheus' promtool (Debian: apt-get install prometheus).
// Without it the test is skipped with a message, and fails under CI=true.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool is not installed: `apt-get install prometheus` (Debian) brings it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

func TestPromtoolChecksTheRules(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(promtool(t), "check", "rules", "recording.yml", "alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestPromtoolUnitTestsPass(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(promtool(t), "test", "rules", "tests.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules did not say SUCCESS:\n%s", out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name  string `yaml:"name"`
		Cases []struct {
			Alert     string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestEveryAlertIsTestedFiringAndNotFiring(t *testing.T) {
	t.Parallel()
	var alerts ruleFile
	readYAML(t, "alerts.yml", &alerts)
	var tests testFile
	readYAML(t, "tests.yml", &tests)
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		if !slices.Contains(tests.RuleFiles, f) {
			t.Errorf("tests.yml does not load %s", f)
		}
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.Cases {
			if len(c.ExpAlerts) > 0 {
				firing[c.Alert] = true
			} else {
				quiet[c.Alert] = true
			}
		}
	}
	n := 0
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !firing[r.Alert] {
				t.Errorf("%s: no test shows it firing", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s: no test shows it not firing", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d alerts found in alerts.yml", n)
	}
}

// Each alert carries a severity, a summary and a runbook link to its own
// section of docs/RUNBOOK.md, and no label that could hold a secret.
func TestEveryAlertLinksToItsRunbookSection(t *testing.T) {
	t.Parallel()
	var alerts ruleFile
	readYAML(t, "alerts.yml", &alerts)
	runbook, err := os.ReadFile(filepath.Join("..", "..", "docs", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	// GitHub's anchors: the heading in lower case.
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} +(\S.*?)\s*$`).FindAllStringSubmatch(string(runbook), -1) {
		a := strings.ToLower(m[1])
		a = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(a, "")
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	const base = "https://github.com/microapps/microapps/blob/main/docs/RUNBOOK.md#"
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description are required", r.Alert)
			}
			want := base + strings.ToLower(r.Alert)
			if got := r.Annotations["runbook_url"]; got != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: docs/RUNBOOK.md has no section named after it", r.Alert)
			}
			for k := range r.Labels {
				if k != "severity" && k != "slo" {
					t.Errorf("%s: label %q: alerts add only severity and slo; the rest comes from the series (integration_id, channel, instance)", r.Alert, k)
				}
			}
			if strings.Contains(r.Expr, "token") || strings.Contains(r.Expr, "secret") {
				t.Errorf("%s: the expression names a token or secret", r.Alert)
			}
		}
	}
}
