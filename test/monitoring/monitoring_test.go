package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/test/harness"
)

const chartDir = "deploy/helm/signet"

// The alerts the chart defines, with audit.interval other than 0.
var wantAlerts = []string{"SignetAuditFailures", "SignetAuditScanStale", "SignetDenialBurst", "SignetTrustRootExpiringSoon", "SignetWebhookErrors"}

// TestPrometheusRule renders the chart's PrometheusRule with bin/helm, has
// bin/promtool check its rules, and runs the alerts' unit tests
// (testdata/alerts_test.yaml) on them.
func TestPrometheusRule(t *testing.T) {
	promtool := harness.Binary(t, "promtool")
	rule := renderOne(t, "PrometheusRule", "--set", "metrics.prometheusRule.enabled=true")
	groups := field[[]any](t, rule.Object, "spec", "groups")

	var alerts []string
	var exprs []string
	for _, g := range groups {
		for _, r := range field[[]any](t, g.(map[string]any), "rules") {
			r := r.(map[string]any)
			name, _ := r["alert"].(string)
			alerts = append(alerts, name)
			exprs = append(exprs, r["expr"].(string))
			ann, _ := r["annotations"].(map[string]any)
			if ann["summary"] == nil || ann["description"] == nil {
				t.Errorf("alert %s lacks a summary or a description annotation", name)
			}
		}
	}
	sort.Strings(alerts)
	if diff := cmp.Diff(wantAlerts, alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	checkMetricNames(t, "the PrometheusRule", exprs)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeYAML(t, rules, map[string]any{"groups": groups})
	out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS: 5 rules found") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// The unit tests match alerts by their labels: the annotations (their
	// text, checked above) are left out.
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	writeYAML(t, rules, map[string]any{"groups": groups})
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules testdata/alerts_test.yaml: %v\n%s", err, out)
	}
	// Every alert is exercised by the unit tests.
	for _, a := range wantAlerts {
		if !strings.Contains(string(tests), "alertname: "+a) {
			t.Errorf("testdata/alerts_test.yaml does not test %s", a)
		}
	}
}

// With audit.interval 0 (the audit off) there is no SignetAuditScanStale,
// and a custom selector and thresholds reach every alert.
func TestPrometheusRuleValues(t *testing.T) {
	rule := renderOne(t, "PrometheusRule", "--set", "metrics.prometheusRule.enabled=true", "--set-string", "audit.interval=0",
		"--set", `metrics.prometheusRule.selector=cluster="prod"`, "--set", "metrics.prometheusRule.denialsPerMinute=100")
	var alerts []string
	for _, g := range field[[]any](t, rule.Object, "spec", "groups") {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			r := r.(map[string]any)
			alerts = append(alerts, r["alert"].(string))
			if expr := r["expr"].(string); !strings.Contains(expr, `{cluster="prod"`) || strings.Contains(expr, "job=") {
				t.Errorf("%s does not select by metrics.prometheusRule.selector: %s", r["alert"], expr)
			}
			if r["alert"] == "SignetDenialBurst" && !strings.Contains(r["expr"].(string), "> 100") {
				t.Errorf("SignetDenialBurst ignores denialsPerMinute: %s", r["expr"])
			}
		}
	}
	if slices.Contains(alerts, "SignetAuditScanStale") || len(alerts) != len(wantAlerts)-1 {
		t.Errorf("alerts with the audit off: %v", alerts)
	}
}

// The dashboard is valid JSON, the ConfigMap holds it as it is in files/
// with the sidecar's label, and every metric it queries is one signet
// defines.
func TestDashboard(t *testing.T) {
	cm := renderOne(t, "ConfigMap", "--set", "metrics.dashboard.enabled=true", "--set", "metrics.dashboard.labelValue=signet")
	if got := field[map[string]any](t, cm.Object, "metadata", "labels")["grafana_dashboard"]; got != "signet" {
		t.Errorf("ConfigMap label grafana_dashboard=%v, want signet (metrics.dashboard.labelValue)", got)
	}
	file, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "files", "signet-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := field[map[string]any](t, cm.Object, "data")["signet-dashboard.json"]; got != strings.TrimSuffix(string(file), "\n") {
		t.Errorf("the ConfigMap's dashboard differs from files/signet-dashboard.json")
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(file, &dash); err != nil {
		t.Fatalf("files/signet-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	var exprs []string
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	checkMetricNames(t, "the dashboard", exprs)
	// What the issue asks the dashboard to show.
	joined := strings.Join(exprs, "\n")
	for _, want := range []string{
		"signet_admission_duration_seconds_count", "histogram_quantile(0.99, sum by (le, kind, decision) (rate(signet_admission_duration_seconds_bucket",
		"signet_admission_policy_results_total", "signet_registry_requests_total", "signet_verification_cache_hits_total",
		"signet_trustroot_expiry_timestamp_seconds", "signet_audit_results", "signet_audit_last_complete_scan_timestamp_seconds",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("the dashboard does not query %s", want)
		}
	}
}

// metricName finds the metric names in PromQL: signet's, by prefix.
var metricName = regexp.MustCompile(`\bsignet_[a-z0-9_]+`)

// checkMetricNames checks that every signet metric the expressions of
// what query is one signet defines (a histogram's with its _bucket, _count
// or _sum suffix), and that each expression queries one.
func checkMetricNames(t *testing.T, what string, exprs []string) {
	t.Helper()
	defined := signetMetrics(t)
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q queries no signet metric", what, e)
		}
		for _, n := range names {
			if _, ok := defined[n]; ok {
				continue
			}
			base := n
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, s)
			}
			if kind := defined[base]; base == n || (kind != "Histogram" && kind != "Summary") {
				t.Errorf("%s queries %s, which signet does not define", what, n)
			}
		}
	}
}

// metricDefinition is a metric's definition in signet's source:
// prometheus.<Kind>Opts{Name: "signet_..."}.
var metricDefinition = regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"(signet_[a-z0-9_]+)"`)

// signetMetrics returns the metrics signet's source defines, by kind, and
// those known by contract.
func signetMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricDefinition.FindAllStringSubmatch(string(src), -1) {
			out[m[2]] = m[1]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["signet_admission_duration_seconds"] != "Histogram" || out["signet_admission_policy_results_total"] != "Counter" {
		t.Fatalf("the metric definitions were not found in the source (found %v)", out)
	}
	return out
}

// renderOne renders the chart (release signet in signet-system) with the
// given helm arguments and returns its only object of kind.
func renderOne(t *testing.T, kind string, args ...string) *object {
	t.Helper()
	helm := harness.Binary(t, "helm")
	home := t.TempDir()
	cmd := exec.Command(helm, append([]string{"template", "signet", filepath.Join(repoRoot(t), chartDir), "--namespace", "signet-system"}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var found []*object
	for _, doc := range strings.Split(string(out), "\n---\n") {
		o := &object{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatalf("helm's output: %v\n%s", err, doc)
		}
		if o.Object["kind"] == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("helm template %v rendered %d %s objects, want 1", args, len(found), kind)
	}
	return found[0]
}

type object struct{ Object map[string]any }

func field[T any](t *testing.T, obj map[string]any, path ...string) T {
	t.Helper()
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s", strings.Join(path, "."))
		}
		v = m[p]
	}
	typed, ok := v.(T)
	if !ok {
		t.Fatalf("%s is a %T", strings.Join(path, "."), v)
	}
	return typed
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
