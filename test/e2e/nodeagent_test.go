package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/harness"
)

// TestNodeAgentDeploy checks the node agent's DaemonSet, in the chart with
// nodeAgent.enabled and in deploy/manifests: the real API server accepts
// every object (server-side dry run, strict fields), the container runs a
// `signet node-agent` command line signet parses, with the webhook's
// unmatched and excluded-namespace settings, the host policy directory is
// mounted where --dir points, and the agent's pods are not selected by the
// webhook's Service.
func TestNodeAgentDeploy(t *testing.T) {
	h := newHelmCLI(t)
	c := harness.StartCluster(t)
	ns := &corev1.Namespace{}
	ns.Name = "signet-system"
	if err := c.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}

	out, err := h.run("template", "signet", repoPath(t, chartDir), "--namespace", "signet-system",
		"--set", "nodeAgent.enabled=true", "--set", "unmatched=warn", "--set", "nodeAgent.policyDir=/var/lib/crio/policies")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	chart := decodeObjects(t, out)
	for _, obj := range chart {
		if err := c.Client.Create(t.Context(), obj.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("chart: %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	r := byKindName(chart)
	ds := r.get(t, "DaemonSet", "signet-node-agent")
	args := nodeAgentArgs(t, ds)
	for _, want := range []string{"--dir=/etc/crio/policies", "--unmatched=warn", "--exclude-namespace=signet-system", "--exclude-namespace=kube-system"} {
		if !slices.Contains(args, want) {
			t.Errorf("chart: node-agent args %q lack %s", args, want)
		}
	}
	if got := hostPathOf(t, ds, "/etc/crio/policies"); got != "/var/lib/crio/policies" {
		t.Errorf("chart: /etc/crio/policies is mounted from host path %q, want nodeAgent.policyDir", got)
	}
	svcSelector := fieldOf[map[string]any](t, r.get(t, "Service", "signet-webhook"), "spec", "selector")
	podLabels := fieldOf[map[string]any](t, ds, "spec", "template", "metadata", "labels")
	if selects(svcSelector, podLabels) {
		t.Errorf("chart: the webhook Service (selector %v) selects the node agent's pods (labels %v)", svcSelector, podLabels)
	}
	if sa := fieldOf[string](t, ds, "spec", "template", "spec", "serviceAccountName"); r.get(t, "ServiceAccount", sa) == nil {
		t.Errorf("chart: no ServiceAccount %s", sa)
	}

	// Disabled (the default), the chart renders no node agent.
	out, err = h.run("template", "signet", repoPath(t, chartDir), "--namespace", "signet-system")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	for _, obj := range decodeObjects(t, out) {
		if strings.Contains(obj.GetName(), "node-agent") {
			t.Errorf("nodeAgent.enabled=false renders %s %s", obj.GetKind(), obj.GetName())
		}
	}

	// deploy/manifests: the same DaemonSet and permissions.
	data, err := os.ReadFile(filepath.Join(repoPath(t, "deploy/manifests"), "40-node-agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plain := byKindName(decodeObjects(t, "\n---\n"+string(data)))
	pds := plain.get(t, "DaemonSet", "signet-node-agent")
	pargs := nodeAgentArgs(t, pds)
	if !slices.Contains(pargs, "--dir=/etc/crio/policies") || hostPathOf(t, pds, "/etc/crio/policies") != "/etc/crio/policies" {
		t.Errorf("deploy/manifests: node-agent args %q do not write the mounted /etc/crio/policies", pargs)
	}
	for _, f := range []struct {
		kind, name string
		path       []string
	}{
		{"ClusterRole", "signet-node-agent", []string{"rules"}},
		{"Role", "signet-node-agent-secrets", []string{"rules"}},
		{"DaemonSet", "signet-node-agent", []string{"spec", "template", "spec", "securityContext"}},
	} {
		want := fieldOf[any](t, plain.get(t, f.kind, f.name), f.path...)
		got := fieldOf[any](t, r.get(t, f.kind, f.name), f.path...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s %s %s: chart differs from deploy/manifests (-manifests +chart):\n%s", f.kind, f.name, strings.Join(f.path, "."), diff)
		}
	}
}

// nodeAgentArgs returns the container's arguments, checking that signet
// parses them as a node-agent command line.
func nodeAgentArgs(t *testing.T, ds *unstructured.Unstructured) []string {
	t.Helper()
	containers := fieldOf[[]any](t, ds, "spec", "template", "spec", "containers")
	var args []string
	for _, a := range containers[0].(map[string]any)["args"].([]any) {
		args = append(args, a.(string))
	}
	cmd, rest, err := server.NewRootCommand().Find(args)
	if err != nil || cmd.Name() != "node-agent" {
		t.Fatalf("container args %q are not a signet node-agent command line: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("signet node-agent rejects the args %q: %v", args, err)
	}
	return args
}

// hostPathOf returns the host path of the volume mounted at mountPath.
func hostPathOf(t *testing.T, ds *unstructured.Unstructured, mountPath string) string {
	t.Helper()
	spec := fieldOf[map[string]any](t, ds, "spec", "template", "spec")
	volume := ""
	for _, m := range spec["containers"].([]any)[0].(map[string]any)["volumeMounts"].([]any) {
		if m.(map[string]any)["mountPath"] == mountPath {
			volume, _ = m.(map[string]any)["name"].(string)
		}
	}
	for _, v := range spec["volumes"].([]any) {
		if v.(map[string]any)["name"] == volume {
			hp, _ := v.(map[string]any)["hostPath"].(map[string]any)
			p, _ := hp["path"].(string)
			return p
		}
	}
	return ""
}

func selects(selector, labels map[string]any) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
