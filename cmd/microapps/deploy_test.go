package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deploy files are configuration the compiler never sees; these tests
// read them as the tools would and hold them to the code: every variable they
// set exists, serve gets what it requires, and the security settings stay.

const deployDir = "../../deploy"

// requiredByServe are the variables a serve container cannot do without: the
// encryption keys have no default, and the database URL's default (localhost)
// is never right inside a container.
var requiredByServe = []string{"MICROAPPS_DATABASE_URL", "MICROAPPS_ENCRYPTION_KEYS"}

type yamlDoc struct {
	file string // relative to deploy/
	obj  map[string]any
}

// readDeployYAML parses every YAML document of every .yaml/.yml file under deploy/.
func readDeployYAML(t *testing.T) []yamlDoc {
	t.Helper()
	var docs []yamlDoc
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		rel, _ := filepath.Rel(deployDir, path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		n := 0
		for {
			var obj map[string]any
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: document %d: %w", rel, n+1, err)
			}
			n++
			if obj == nil {
				return fmt.Errorf("%s: document %d is empty", rel, n)
			}
			docs = append(docs, yamlDoc{file: filepath.ToSlash(rel), obj: obj})
		}
		if n == 0 {
			return fmt.Errorf("%s has no YAML document", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// dig walks nested maps and lists: keys for maps, decimal indexes for lists.
func dig(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func digString(v any, path ...string) string {
	s, _ := dig(v, path...).(string)
	return s
}

func digList(v any, path ...string) []any {
	l, _ := dig(v, path...).([]any)
	return l
}

func digMap(v any, path ...string) map[string]any {
	m, _ := dig(v, path...).(map[string]any)
	return m
}

func stringList(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// kubeObjects returns the Kubernetes objects under deploy/kubernetes, the
// kustomization excluded.
func kubeObjects(t *testing.T) []yamlDoc {
	t.Helper()
	var out []yamlDoc
	for _, d := range readDeployYAML(t) {
		if strings.HasPrefix(d.file, "kubernetes/") && d.obj["kind"] != "Kustomization" {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatal("no Kubernetes objects under deploy/kubernetes")
	}
	return out
}

func ofKind(objs []yamlDoc, kind string) []yamlDoc {
	var out []yamlDoc
	for _, d := range objs {
		if d.obj["kind"] == kind {
			out = append(out, d)
		}
	}
	return out
}

func named(t *testing.T, objs []yamlDoc, kind, name string) yamlDoc {
	t.Helper()
	for _, d := range ofKind(objs, kind) {
		if digString(d.obj, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s named %q in deploy/kubernetes", kind, name)
	return yamlDoc{}
}

// dataOf returns a ConfigMap's or Secret's keys and values (Secret data
// base64-decoded, stringData winning as the API server does).
func dataOf(t *testing.T, d yamlDoc) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range digMap(d.obj, "data") {
		s := fmt.Sprint(v)
		if d.obj["kind"] == "Secret" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatalf("%s: Secret data %s is not base64: %v", d.file, k, err)
			}
			s = string(b)
		}
		out[k] = s
	}
	for k, v := range digMap(d.obj, "stringData") {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// containerEnv resolves the environment a container starts with: envFrom in
// order, then env, which wins, as the kubelet does.
func containerEnv(t *testing.T, objs []yamlDoc, where string, c any) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, src := range digList(c, "envFrom") {
		switch {
		case digString(src, "configMapRef", "name") != "":
			maps.Copy(env, dataOf(t, named(t, objs, "ConfigMap", digString(src, "configMapRef", "name"))))
		case digString(src, "secretRef", "name") != "":
			maps.Copy(env, dataOf(t, named(t, objs, "Secret", digString(src, "secretRef", "name"))))
		default:
			t.Fatalf("%s: envFrom entry %v is neither configMapRef nor secretRef", where, src)
		}
	}
	for _, e := range digList(c, "env") {
		name := digString(e, "name")
		switch {
		case dig(e, "value") != nil:
			env[name] = fmt.Sprint(dig(e, "value"))
		case dig(e, "valueFrom", "secretKeyRef") != nil:
			ref := digMap(e, "valueFrom", "secretKeyRef")
			data := dataOf(t, named(t, objs, "Secret", fmt.Sprint(ref["name"])))
			v, ok := data[fmt.Sprint(ref["key"])]
			if !ok {
				t.Fatalf("%s: %s refers to key %v, which Secret %v lacks", where, name, ref["key"], ref["name"])
			}
			env[name] = v
		case dig(e, "valueFrom", "configMapKeyRef") != nil:
			ref := digMap(e, "valueFrom", "configMapKeyRef")
			data := dataOf(t, named(t, objs, "ConfigMap", fmt.Sprint(ref["name"])))
			v, ok := data[fmt.Sprint(ref["key"])]
			if !ok {
				t.Fatalf("%s: %s refers to key %v, which ConfigMap %v lacks", where, name, ref["key"], ref["name"])
			}
			env[name] = v
		default:
			t.Fatalf("%s: env %s has neither value nor a key reference", where, name)
		}
	}
	return env
}

func knownEnvVar(name string) bool {
	return slices.ContainsFunc(envVars, func(ev envVar) bool { return ev.Name == name })
}

func TestEveryDeployFileParses(t *testing.T) {
	t.Parallel()
	perFile := map[string]int{}
	for _, d := range readDeployYAML(t) {
		perFile[d.file]++
	}
	for _, want := range []string{"docker-compose.yml", "kubernetes/kustomization.yaml", "kubernetes/web-deployment.yaml", "kubernetes/worker-deployment.yaml"} {
		if perFile[want] == 0 {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	if perFile["kubernetes/pdb.yaml"] != 2 {
		t.Errorf("deploy/kubernetes/pdb.yaml has %d documents, want 2 (one per Deployment)", perFile["kubernetes/pdb.yaml"])
	}
}

func TestKubernetesObjectsAreComplete(t *testing.T) {
	t.Parallel()
	objs := kubeObjects(t)
	kinds := map[string]int{}
	for _, d := range objs {
		for _, f := range []string{"apiVersion", "kind"} {
			if s, _ := d.obj[f].(string); s == "" {
				t.Errorf("%s: an object has no %s", d.file, f)
			}
		}
		if digString(d.obj, "metadata", "name") == "" {
			t.Errorf("%s: %v has no metadata.name", d.file, d.obj["kind"])
		}
		if ns := dig(d.obj, "metadata", "namespace"); ns != nil {
			t.Errorf("%s: %v sets namespace %v; the manifests must stay namespace-agnostic", d.file, d.obj["kind"], ns)
		}
		kinds[fmt.Sprint(d.obj["kind"])]++
	}
	want := map[string]int{"Deployment": 2, "Job": 1, "Service": 1, "Secret": 1, "ConfigMap": 1, "PodDisruptionBudget": 2}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d objects of kind %s, want %d", kinds[k], k, n)
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	var k map[string]any
	for _, d := range readDeployYAML(t) {
		if d.file == "kubernetes/kustomization.yaml" {
			k = d.obj
		}
	}
	if k["kind"] != "Kustomization" {
		t.Fatalf("kustomization.yaml kind = %v", k["kind"])
	}
	if _, ok := k["namespace"]; ok {
		t.Error("kustomization.yaml sets a namespace; leave that to the overlay or -n")
	}
	listed := stringList(digList(k, "resources"))
	sort.Strings(listed)
	var files []string
	entries, err := os.ReadDir(filepath.Join(deployDir, "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "kustomization.yaml" && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			files = append(files, n)
		}
	}
	sort.Strings(files)
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization resources = %v, want every manifest %v", listed, files)
	}
}

// podSpecs returns the pod template spec of each Deployment and Job.
func podSpecs(objs []yamlDoc) map[string]any {
	out := map[string]any{}
	for _, d := range objs {
		if d.obj["kind"] == "Deployment" || d.obj["kind"] == "Job" {
			out[fmt.Sprint(d.obj["kind"])+"/"+digString(d.obj, "metadata", "name")] = dig(d.obj, "spec", "template", "spec")
		}
	}
	return out
}

func TestWorkloadsAreHardenedAndRequestResources(t *testing.T) {
	t.Parallel()
	specs := podSpecs(kubeObjects(t))
	if len(specs) != 3 {
		t.Fatalf("%d workloads, want web, worker and migrate", len(specs))
	}
	for name, spec := range specs {
		containers := digList(spec, "containers")
		if len(containers) == 0 {
			t.Errorf("%s has no containers", name)
		}
		for i, c := range containers {
			where := fmt.Sprintf("%s container %d", name, i)
			// A container setting wins over the pod's.
			sec := func(path ...string) any {
				if v := dig(c, append([]string{"securityContext"}, path...)...); v != nil {
					return v
				}
				return dig(spec, append([]string{"securityContext"}, path...)...)
			}
			if sec("runAsNonRoot") != true {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if dig(c, "securityContext", "readOnlyRootFilesystem") != true {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if dig(c, "securityContext", "allowPrivilegeEscalation") != false {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if !slices.Contains(stringList(digList(c, "securityContext", "capabilities", "drop")), "ALL") {
				t.Errorf("%s: capabilities do not drop ALL", where)
			}
			if sec("seccompProfile", "type") != "RuntimeDefault" {
				t.Errorf("%s: seccompProfile is %v, want RuntimeDefault", where, sec("seccompProfile", "type"))
			}
			if uid, ok := sec("runAsUser").(int); ok && uid == 0 {
				t.Errorf("%s: runAsUser 0", where)
			}
			for _, r := range []string{"cpu", "memory"} {
				if digString(c, "resources", "requests", r) == "" {
					t.Errorf("%s: no %s request", where, r)
				}
			}
			if digString(c, "resources", "limits", "memory") == "" {
				t.Errorf("%s: no memory limit", where)
			}
			// A read-only root needs somewhere writable for temporary files.
			mounted := false
			for _, m := range digList(c, "volumeMounts") {
				mounted = mounted || digString(m, "mountPath") == "/tmp"
			}
			if !mounted {
				t.Errorf("%s: no writable /tmp mounted", where)
			}
		}
	}
}

func TestDeploymentsAreProbedAndProtected(t *testing.T) {
	t.Parallel()
	objs := kubeObjects(t)
	deps := ofKind(objs, "Deployment")
	pdbs := ofKind(objs, "PodDisruptionBudget")
	for _, d := range deps {
		name := digString(d.obj, "metadata", "name")
		if r, _ := dig(d.obj, "spec", "replicas").(int); r < 2 {
			t.Errorf("%s: %d replicas, want at least 2", name, r)
		}
		podLabels := digMap(d.obj, "spec", "template", "metadata", "labels")
		for k, v := range digMap(d.obj, "spec", "selector", "matchLabels") {
			if podLabels[k] != v {
				t.Errorf("%s: selector %s=%v does not match the pod template", name, k, v)
			}
		}
		for i, c := range digList(d.obj, "spec", "template", "spec", "containers") {
			ports := map[string]bool{}
			for _, p := range digList(c, "ports") {
				ports[digString(p, "name")] = true
				ports[fmt.Sprint(dig(p, "containerPort"))] = true
			}
			for probe, path := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz"} {
				if got := digString(c, probe, "httpGet", "path"); got != path {
					t.Errorf("%s container %d: %s path = %q, want %q", name, i, probe, got, path)
				}
				if port := fmt.Sprint(dig(c, probe, "httpGet", "port")); !ports[port] {
					t.Errorf("%s container %d: %s port %s is not a container port", name, i, probe, port)
				}
			}
			if !ports["8080"] {
				t.Errorf("%s container %d: does not expose 8080", name, i)
			}
		}
		covered := false
		for _, p := range pdbs {
			sel := digMap(p.obj, "spec", "selector", "matchLabels")
			if len(sel) == 0 {
				t.Errorf("PodDisruptionBudget %s has no selector", digString(p.obj, "metadata", "name"))
				continue
			}
			match := true
			for k, v := range sel {
				match = match && podLabels[k] == v
			}
			covered = covered || match
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", name)
		}
	}

	// The Service sends traffic to the web pods only, on their named port.
	svc := named(t, objs, "Service", "microapps-web")
	web := named(t, objs, "Deployment", "microapps-web")
	worker := named(t, objs, "Deployment", "microapps-worker")
	matches := func(dep yamlDoc) bool {
		labels := digMap(dep.obj, "spec", "template", "metadata", "labels")
		for k, v := range digMap(svc.obj, "spec", "selector") {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(web) || matches(worker) {
		t.Errorf("Service selector %v: selects web %v, worker %v; want web only", digMap(svc.obj, "spec", "selector"), matches(web), matches(worker))
	}
	if tp := digString(svc.obj, "spec", "ports", "0", "targetPort"); tp != "http" {
		t.Errorf("Service targetPort = %q, want the named port http", tp)
	}
	// /metrics is on a listener of its own, which the pods expose and
	// Prometheus scrapes, and which the Service does not route.
	cm := named(t, objs, "ConfigMap", "microapps-config")
	metricsAddr := digString(cm.obj, "data", "MICROAPPS_METRICS_ADDR")
	_, metricsPort, err := splitAddr(metricsAddr)
	if err != nil || metricsPort == 8080 {
		t.Fatalf("the ConfigMap's MICROAPPS_METRICS_ADDR %q is not a port of its own (%v)", metricsAddr, err)
	}
	for _, d := range deps {
		name := digString(d.obj, "metadata", "name")
		if got := digString(d.obj, "spec", "template", "metadata", "annotations", "prometheus.io/port"); got != fmt.Sprint(metricsPort) {
			t.Errorf("%s: Prometheus scrapes port %q, want the metrics port %d", name, got, metricsPort)
		}
		exposed := false
		for _, c := range digList(d.obj, "spec", "template", "spec", "containers") {
			for _, p := range digList(c, "ports") {
				exposed = exposed || fmt.Sprint(dig(p, "containerPort")) == fmt.Sprint(metricsPort)
			}
		}
		if !exposed {
			t.Errorf("%s: no container port %d for metrics", name, metricsPort)
		}
	}
	for _, p := range digList(svc.obj, "spec", "ports") {
		if tp := fmt.Sprint(dig(p, "targetPort")); tp == "metrics" || tp == fmt.Sprint(metricsPort) {
			t.Errorf("the Service routes the metrics port %s", tp)
		}
	}
}

func TestWebIsWebOnlyAndWorkersRunJobs(t *testing.T) {
	t.Parallel()
	objs := kubeObjects(t)
	for _, tc := range []struct {
		deployment string
		webOnly    bool
	}{
		{"microapps-web", true},
		{"microapps-worker", false},
	} {
		d := named(t, objs, "Deployment", tc.deployment)
		c := dig(d.obj, "spec", "template", "spec", "containers", "0")
		if args := stringList(digList(c, "args")); !slices.Equal(args, []string{"serve"}) {
			t.Errorf("%s: args = %v, want [serve]", tc.deployment, args)
		}
		env := containerEnv(t, objs, tc.deployment, c)
		w, ok := env["MICROAPPS_WORKERS"]
		if !ok {
			t.Errorf("%s: MICROAPPS_WORKERS is not set", tc.deployment)
			continue
		}
		n, err := strconv.Atoi(w)
		switch {
		case err != nil:
			t.Errorf("%s: MICROAPPS_WORKERS = %q", tc.deployment, w)
		case tc.webOnly && n != 0:
			t.Errorf("%s: MICROAPPS_WORKERS = %d, want 0", tc.deployment, n)
		case !tc.webOnly && n < 1:
			t.Errorf("%s: MICROAPPS_WORKERS = %d, want at least 1", tc.deployment, n)
		}
	}
}

var envNameRE = regexp.MustCompile(`MICROAPPS_[A-Z0-9_]*[A-Z0-9]`)

func TestDeployNamesOnlyKnownVariables(t *testing.T) {
	t.Parallel()
	// Every mention in any file, comments included: a stale name in an
	// example misleads as much as one in a manifest.
	seen := map[string]bool{}
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, name := range envNameRE.FindAllString(string(b), -1) {
			seen[name] = true
			if !knownEnvVar(name) {
				t.Errorf("%s mentions %s, which config.go's envVars does not know", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 10 {
		t.Errorf("only %d MICROAPPS_* names found under deploy/; the scan is broken", len(seen))
	}

	// And every variable actually set, as the tools read it.
	check := func(where, name string) {
		if !knownEnvVar(name) {
			t.Errorf("%s sets %s, which config.go's envVars does not know", where, name)
		}
	}
	objs := kubeObjects(t)
	for _, kind := range []string{"ConfigMap", "Secret"} {
		for _, d := range ofKind(objs, kind) {
			for k := range dataOf(t, d) {
				check(d.file+" "+kind+" key", k)
			}
		}
	}
	for name, spec := range podSpecs(objs) {
		for _, c := range digList(spec, "containers") {
			for _, e := range digList(c, "env") {
				check(name+" env", digString(e, "name"))
			}
		}
	}
	// The postgres service has its own POSTGRES_* variables; the services
	// running the microapps image may set only MICROAPPS_* ones.
	services := digMap(compose(t), "services")
	for svc, env := range composeEnvs(t) {
		ours := digString(services[svc], "image") == "microapps:local"
		for k := range env {
			if ours || strings.HasPrefix(k, "MICROAPPS_") {
				check("docker-compose.yml service "+svc, k)
			}
		}
	}
}

func compose(t *testing.T) map[string]any {
	t.Helper()
	for _, d := range readDeployYAML(t) {
		if d.file == "docker-compose.yml" {
			return d.obj
		}
	}
	t.Fatal("deploy/docker-compose.yml not found")
	return nil
}

// composeEnvs returns each compose service's environment, in either of the
// two forms compose accepts (a map, or a list of NAME=value).
func composeEnvs(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for name, svc := range digMap(compose(t), "services") {
		env := map[string]string{}
		switch e := dig(svc, "environment").(type) {
		case map[string]any:
			for k, v := range e {
				env[k] = fmt.Sprint(v)
			}
		case []any:
			for _, kv := range stringList(e) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
		out[name] = env
	}
	return out
}

func TestServeContainersGetWhatServeRequires(t *testing.T) {
	t.Parallel()
	objs := kubeObjects(t)
	serving := 0
	for name, spec := range podSpecs(objs) {
		for i, c := range digList(spec, "containers") {
			args := stringList(digList(c, "args"))
			env := containerEnv(t, objs, name, c)
			var need []string
			switch {
			case slices.Equal(args, []string{"serve"}):
				serving++
				need = requiredByServe
			case slices.Equal(args, []string{"migrate", "up"}):
				need = []string{"MICROAPPS_DATABASE_URL"}
			default:
				t.Errorf("%s container %d: unexpected args %v", name, i, args)
			}
			for _, v := range need {
				if env[v] == "" {
					t.Errorf("%s container %d (%v) is not given %s", name, i, args, v)
				}
			}
		}
	}
	if serving != 2 {
		t.Errorf("%d serve containers, want 2 (web and worker)", serving)
	}

	services := digMap(compose(t), "services")
	envs := composeEnvs(t)
	serving = 0
	for name, svc := range services {
		if cmd := stringList(digList(svc, "command")); len(cmd) > 0 && cmd[0] == "serve" {
			serving++
			for _, v := range requiredByServe {
				if envs[name][v] == "" {
					t.Errorf("compose service %s runs serve without %s", name, v)
				}
			}
		}
	}
	if serving != 1 {
		t.Errorf("%d compose services run serve, want 1", serving)
	}
}

func TestExampleSecretCannotRunButTheRestIsValid(t *testing.T) {
	t.Parallel()
	objs := kubeObjects(t)
	web := named(t, objs, "Deployment", "microapps-web")
	env := containerEnv(t, objs, "web", dig(web.obj, "spec", "template", "spec", "containers", "0"))

	_, err := loadConfig(envOf(env), useServe)
	if err == nil || !strings.Contains(err.Error(), "MICROAPPS_ENCRYPTION_KEYS") || !strings.Contains(err.Error(), "MICROAPPS_ADMIN_TOKENS") {
		t.Errorf("the example Secret's placeholders were accepted (err = %v); they must make serve refuse to start", err)
	}
	// With real secrets in place, the ConfigMap's settings are valid.
	env["MICROAPPS_ENCRYPTION_KEYS"] = goodKey
	env["MICROAPPS_ADMIN_TOKENS"] = "0123456789abcdef0123"
	cfg, err := loadConfig(envOf(env), useServe)
	if err != nil {
		t.Fatalf("web configuration with real secrets: %v", err)
	}
	if cfg.Workers != 0 || cfg.AuthMode != "oidc" || cfg.HTTPAddr != ":8080" {
		t.Errorf("web config: workers %d, auth %s, addr %s", cfg.Workers, cfg.AuthMode, cfg.HTTPAddr)
	}
}

func TestComposeTrialStartsInOrderWithAValidConfiguration(t *testing.T) {
	t.Parallel()
	c := compose(t)
	svc := func(name string) any {
		s := dig(c, "services", name)
		if s == nil {
			t.Fatalf("compose has no service %s", name)
		}
		return s
	}
	pg, migrate, serve, sim := svc("postgres"), svc("migrate"), svc("serve"), svc("sim")

	if img := digString(pg, "image"); img != "postgres:16" {
		t.Errorf("postgres image = %q", img)
	}
	if len(stringList(digList(pg, "healthcheck", "test"))) == 0 {
		t.Error("postgres has no healthcheck, so migrate cannot wait for it")
	}
	for _, tc := range []struct {
		name    string
		svc     any
		command []string
		after   string
		cond    string
	}{
		{"migrate", migrate, []string{"migrate", "up"}, "postgres", "service_healthy"},
		{"serve", serve, []string{"serve"}, "migrate", "service_completed_successfully"},
		{"sim", sim, []string{"sim", "--addr", "0.0.0.0:9090"}, "", ""},
	} {
		if got := stringList(digList(tc.svc, "command")); !slices.Equal(got, tc.command) {
			t.Errorf("%s command = %v, want %v", tc.name, got, tc.command)
		}
		if tc.after != "" {
			if got := digString(tc.svc, "depends_on", tc.after, "condition"); got != tc.cond {
				t.Errorf("%s depends on %s with condition %q, want %q", tc.name, tc.after, got, tc.cond)
			}
		}
		if digString(tc.svc, "image") != "microapps:local" || digString(tc.svc, "build", "dockerfile") != "Dockerfile" {
			t.Errorf("%s does not run the image built from the Dockerfile", tc.name)
		}
	}
	if got := digString(migrate, "restart"); got != "no" {
		t.Errorf("migrate restart = %q, want no: it is a one-shot", got)
	}

	envs := composeEnvs(t)
	if _, err := loadConfig(envOf(envs["migrate"]), useMigrate); err != nil {
		t.Errorf("migrate's configuration: %v", err)
	}
	cfg, err := loadConfig(envOf(envs["serve"]), useServe)
	if err != nil {
		t.Fatalf("serve's configuration is rejected by serve: %v", err)
	}
	if cfg.AuthMode != "header" {
		t.Errorf("auth mode = %q, want header for a local trial", cfg.AuthMode)
	}
	if !slices.Contains(cfg.QualtricsAllowedHosts, "sim") {
		t.Errorf("allowed Qualtrics hosts %v lack the simulator's service name", cfg.QualtricsAllowedHosts)
	}
	if envs["migrate"]["MICROAPPS_DATABASE_URL"] != envs["serve"]["MICROAPPS_DATABASE_URL"] {
		t.Error("migrate and serve use different databases")
	}
	if !strings.Contains(cfg.DatabaseURL, "@postgres:5432/") {
		t.Errorf("database URL %q does not point at the postgres service", cfg.DatabaseURL)
	}
	for _, p := range stringList(digList(serve, "ports")) {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("serve publishes %q beyond loopback; header sign-in must stay local", p)
		}
	}
	// Header mode with nothing in front: only the network's gateway (where
	// published requests come from) may name the user, not every private
	// address, which includes the other containers.
	gateway := ""
	for _, c := range digList(c, "networks", "default", "ipam", "config") {
		gateway = digString(c, "gateway")
	}
	if gateway == "" {
		t.Fatal("the compose network's gateway is not pinned, so it cannot be the only trusted peer")
	}
	if want := []netip.Prefix{netip.MustParsePrefix(gateway + "/32")}; !slices.Equal(cfg.TrustedProxies, want) {
		t.Errorf("serve trusts %v, want only the gateway %v", cfg.TrustedProxies, want)
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines joined.
type dockerInstruction struct {
	stage int // 0-based, counted by FROM
	cmd   string
	args  string
}

func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []dockerInstruction
		buf   strings.Builder
		stage = -1
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && buf.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		full := strings.TrimSpace(buf.String())
		buf.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, dockerInstruction{stage: stage, cmd: cmd, args: strings.TrimSpace(args)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfileBuildsAStampedNonRootImage(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	last := ins[len(ins)-1].stage
	if last < 1 {
		t.Fatalf("%d stages, want a builder and a final stage", last+1)
	}
	final := map[string][]string{}
	var build []string
	for _, in := range ins {
		if in.cmd == "HEALTHCHECK" {
			t.Errorf("HEALTHCHECK %s: probes check health, not the image", in.args)
		}
		if in.stage == last {
			final[in.cmd] = append(final[in.cmd], in.args)
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = append(build, in.args)
		}
		if in.cmd == "FROM" && in.stage == 0 && !strings.Contains(in.args, "golang:") {
			t.Errorf("builder stage FROM %s, want the golang image", in.args)
		}
	}

	// Non-root: a numeric, non-zero USER (Kubernetes' runAsNonRoot can only
	// verify a number), or a distroless :nonroot base.
	from := final["FROM"][0]
	users := final["USER"]
	switch {
	case len(users) > 0:
		uid, _, _ := strings.Cut(users[len(users)-1], ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("final USER %q, want a numeric non-root uid", users[len(users)-1])
		}
	case strings.Contains(from, ":nonroot"):
	default:
		t.Errorf("final stage (FROM %s) runs as root: no USER", from)
	}

	if len(build) != 1 {
		t.Fatalf("%d RUN go build instructions, want 1", len(build))
	}
	for _, want := range []string{"-trimpath", `-X main.version=${VERSION}`, "-s -w", "./cmd/microapps"} {
		if !strings.Contains(build[0], want) {
			t.Errorf("go build lacks %s: %s", want, build[0])
		}
	}
	all := ""
	for _, in := range ins {
		all += in.cmd + " " + in.args + "\n"
	}
	for _, want := range []string{"ARG VERSION=dev", "CGO_ENABLED=0", "--mount=type=cache,target=/go/pkg/mod"} {
		if !strings.Contains(all, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	for cmd, want := range map[string]string{"ENTRYPOINT": `["/microapps"]`, "CMD": `["serve"]`, "EXPOSE": "8080"} {
		if got := final[cmd]; len(got) != 1 || got[0] != want {
			t.Errorf("final %s = %v, want %s", cmd, got, want)
		}
	}
}

// Not parallel: it sets the package variable the Dockerfile's -X stamps, which
// is only safe while no other test runs.
func TestTheStampedVersionIsWhatVersionPrints(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9-stamp"
	if got := buildVersion(); got != "v9.9.9-stamp" {
		t.Errorf("buildVersion() = %q with main.version stamped", got)
	}
}

func TestDockerignoreKeepsTheSourcesAndDropsTheRest(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimSuffix(l, "/"))
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, p := range patterns {
		for _, keep := range []string{"go.mod", "go.sum", "cmd", "migrations", "store", "*.go", "**/*.go"} {
			if p == keep {
				t.Errorf(".dockerignore excludes %s, which the build needs", p)
			}
		}
	}
}
