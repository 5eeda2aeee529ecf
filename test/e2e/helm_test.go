package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/harness"
)

const chartDir = "deploy/helm/signet"

// TestHelmChart renders deploy/helm/signet with the real helm CLI (bin/helm)
// and checks the result against a real API server: every rendered object,
// the chart's CRDs included, is created with a server-side dry run and strict
// field validation (the release namespace for real, as the namespaced objects
// need it). The rendered objects must also agree with each other and with
// signet serve's flags, and with the defaults, with deploy/manifests.
func TestHelmChart(t *testing.T) {
	h := newHelmCLI(t)
	chart := repoPath(t, chartDir)
	// No CRDs up front: the chart's own are among the created objects.
	c := harness.StartCluster(t)
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	kubeVersion := sv.GitVersion

	for _, tc := range []struct {
		name, release, namespace string
		set                      []string
		replicas                 int64
		unmatched                string
		fullname                 string
		sameAsManifests          bool
		// optInLabel is the label that opts namespaces in; "": no opt-in.
		optInLabel string
		nodeAgent  bool
		// monitoring: the metrics values are on (metrics port 9090).
		monitoring bool
		// cloud: --registry-credential-providers ("": none).
		cloud string
		// sharedCache: the shared cache's values are set (with a password).
		sharedCache bool
	}{
		{name: "defaults", release: "signet", namespace: "signet-system", replicas: 2, unmatched: "deny", fullname: "signet", sameAsManifests: true},
		{name: "replicas 3, unmatched warn", release: "prod", namespace: "admission", set: []string{"replicas=3", "unmatched=warn", "tuf.enabled=true", "tuf.mirror=https://tuf.mirror.example", "tuf.refreshInterval=12h", "crossplaneRegistry=xpkg.upbound.io",
			"sharedCache.enabled=true", "sharedCache.address=redis://redis.cache.svc:6379/1", "sharedCache.keySecret=signet-shared-cache", "sharedCache.passwordSecret=signet-redis", "sharedCache.timeout=150ms"},
			replicas: 3, unmatched: "warn", fullname: "prod-signet", sharedCache: true},
		// Seed 004 as written: policy-controller's namespace label.
		{name: "opt-in by policy-controller's label, node agent", release: "signet", namespace: "policy-system",
			set:      []string{"namespaceOptIn=true", "namespaceOptInLabel=policy.sigstore.dev/include", "nodeAgent.enabled=true"},
			replicas: 2, unmatched: "deny", fullname: "signet", optInLabel: "policy.sigstore.dev/include", nodeAgent: true},
		{name: "metrics port, ServiceMonitor, alerts, dashboard, network policy", release: "signet", namespace: "monitored",
			set: []string{"metrics.port=9090", "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
				"metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=kube-prometheus-stack", "metrics.dashboard.enabled=true",
				"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.0/24}", "networkPolicy.metricsNamespaceSelector.matchLabels.team=monitoring"},
			replicas: 2, unmatched: "deny", fullname: "signet", monitoring: true},
		// Seed 001's fallback service account; cloud registries by workload identity.
		{name: "fallback service account, cloud credential providers", release: "signet", namespace: "image-policy-system",
			set: []string{"fallbackServiceAccount=image-policy-registry-credentials", "registryCredentialProviders={aws,azure}",
				"serviceAccount.annotations.azure\\.workload\\.identity/client-id=00000000-0000-0000-0000-000000000001"},
			replicas: 2, unmatched: "deny", fullname: "signet", cloud: "aws,azure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", tc.release, chart, "--namespace", tc.namespace, "--include-crds", "--kube-version", kubeVersion}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := h.run(args...)
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			objs := decodeObjects(t, out)

			ns := &corev1.Namespace{}
			ns.Name = tc.namespace
			if err := c.Client.Create(t.Context(), ns); err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, obj := range objs {
				kinds[obj.GetKind()]++
				if obj.GetNamespace() != "" && obj.GetNamespace() != tc.namespace {
					t.Errorf("%s %s is in namespace %q, not the release namespace %q", obj.GetKind(), obj.GetName(), obj.GetNamespace(), tc.namespace)
				}
				if obj.GroupVersionKind().Group == "monitoring.coreos.com" {
					// The Prometheus Operator's CRDs are not signet's, and
					// not in this cluster: checkMonitoring checks these.
					continue
				}
				if err := c.Client.Create(t.Context(), obj.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
			wantKinds := map[string]int{
				"CustomResourceDefinition": 5, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
				"Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1, "PodDisruptionBudget": 1,
				"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1,
			}
			if tc.nodeAgent {
				for _, k := range []string{"DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
					wantKinds[k]++
				}
			}
			if tc.monitoring {
				wantKinds["ServiceMonitor"], wantKinds["PrometheusRule"], wantKinds["ConfigMap"], wantKinds["NetworkPolicy"] = 1, 1, 1, 1
			}
			if diff := cmp.Diff(wantKinds, kinds); diff != "" {
				t.Errorf("rendered kinds (-want +got):\n%s", diff)
			}

			r := byKindName(objs)
			checkConsistent(t, r, tc.namespace, tc.fullname)
			dep := r.get(t, "Deployment", tc.fullname+"-webhook")
			if got, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); got != tc.replicas {
				t.Errorf("replicas: got %d, want %d", got, tc.replicas)
			}
			a := serveArgs(t, dep)
			if !slices.Contains(a, "--audit-interval=1h") {
				t.Errorf("signet serve args %q lack the audit's interval", a)
			}
			if !slices.Contains(a, "--unmatched="+tc.unmatched) {
				t.Errorf("signet serve args %q lack --unmatched=%s", a, tc.unmatched)
			}
			crossplane := "xpkg.crossplane.io"
			if slices.Contains(tc.set, "crossplaneRegistry=xpkg.upbound.io") {
				crossplane = "xpkg.upbound.io"
			}
			if !slices.Contains(a, "--crossplane-registry="+crossplane) {
				t.Errorf("signet serve args %q lack --crossplane-registry=%s", a, crossplane)
			}
			if tuf := slices.Contains(tc.set, "tuf.enabled=true"); tuf != slices.Contains(a, "--tuf") || tuf != slices.Contains(a, "--tuf-refresh-interval=12h") {
				t.Errorf("signet serve args %q: --tuf and its interval should be there exactly when tuf.enabled", a)
			}
			fallback := ""
			for _, s := range tc.set {
				if v, ok := strings.CutPrefix(s, "fallbackServiceAccount="); ok {
					fallback = "--fallback-service-account=" + v
				}
			}
			if got := slices.IndexFunc(a, func(s string) bool { return strings.HasPrefix(s, "--fallback-service-account") }) >= 0; got != (fallback != "") || (got && !slices.Contains(a, fallback)) {
				t.Errorf("signet serve args %q: want %q exactly when fallbackServiceAccount is set", a, fallback)
			}
			checkCloud(t, dep, r.get(t, "ServiceAccount", tc.fullname), a, tc.cloud)
			checkStopping(t, dep, a)
			checkSharedCache(t, dep, a, tc.sharedCache)
			checkOptIn(t, r, tc.fullname, tc.optInLabel, tc.nodeAgent)
			checkMonitoring(t, r, tc.fullname, tc.namespace, tc.monitoring)
			if tc.sameAsManifests {
				compareWithManifests(t, r)
			}
		})
	}

	// A real install and upgrade: helm applies every object, and an upgrade
	// keeps the caBundle signet injected (it is not part of the chart).
	t.Run("install and upgrade keep the injected caBundle", func(t *testing.T) {
		base := []string{"signet", chart, "--namespace", "signet-system", "--kubeconfig", c.Kubeconfig}
		if out, err := h.run(append([]string{"install"}, base...)...); err != nil {
			t.Fatalf("helm install: %v\n%s", err, out)
		} else if !strings.Contains(out, "kubectl -n signet-system rollout status deployment/signet-webhook") {
			t.Errorf("helm install printed no usable notes:\n%s", out)
		}
		ca := []byte("-----BEGIN CERTIFICATE-----\ninjected\n-----END CERTIFICATE-----\n")
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Name: "signet"}, vwc); err != nil {
			t.Fatal(err)
		}
		vwc.Webhooks[0].ClientConfig.CABundle = ca
		if err := c.Client.Update(t.Context(), vwc); err != nil {
			t.Fatal(err)
		}
		if out, err := h.run(append([]string{"upgrade"}, append(base, "--set", "replicas=3")...)...); err != nil {
			t.Fatalf("helm upgrade: %v\n%s", err, out)
		}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Name: "signet"}, vwc); err != nil {
			t.Fatal(err)
		}
		if got := vwc.Webhooks[0].ClientConfig.CABundle; !bytes.Equal(got, ca) {
			t.Errorf("after helm upgrade, caBundle is %q, want the injected %q", got, ca)
		}
		dep := &appsv1.Deployment{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: "signet-system", Name: "signet-webhook"}, dep); err != nil {
			t.Fatal(err)
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
			t.Errorf("after helm upgrade --set replicas=3, the Deployment has %v replicas", dep.Spec.Replicas)
		}
	})

	t.Run("lint", func(t *testing.T) {
		for _, set := range [][]string{nil, {"replicas=3", "unmatched=warn"},
			{"metrics.port=9090", "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "metrics.dashboard.enabled=true"}} {
			args := []string{"lint", "--strict", chart, "--namespace", "signet-system", "--kube-version", kubeVersion}
			for _, s := range set {
				args = append(args, "--set", s)
			}
			out, err := h.run(args...)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})

	// The chart refuses values that would break an invariant, before anything
	// reaches the cluster.
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"webhook timeout above 30s", []string{"webhook.timeoutSeconds=31"}, "timeoutSeconds"},
		{"decision timeout not below the webhook's", []string{"decisionTimeout=25s"}, "decisionTimeout 25s must be positive, below webhook.timeoutSeconds"},
		{"decision timeout in minutes", []string{"decisionTimeout=1m"}, "decisionTimeout"},
		{"unknown unmatched", []string{"unmatched=audit"}, "unmatched"},
		{"unknown failure policy", []string{"webhook.failurePolicy=Skip"}, "failurePolicy"},
		{"misspelt value", []string{"replicaCount=3"}, "replicaCount"},
		{"TUF mirror that is not a URL", []string{"tuf.enabled=true", "tuf.mirror=ftp://mirror"}, "/tuf/mirror"},
		{"existing service account without a name", []string{"serviceAccount.create=false"}, "serviceAccount.name is required"},
		{"opt-in label that is not a label key", []string{"namespaceOptIn=true", "namespaceOptInLabel=Policy_Sigstore.dev/include"}, "/namespaceOptInLabel"},
		{"metrics port that is the HTTPS port", []string{"metrics.port=8443"}, "/metrics/port"},
		{"metrics port below 1024", []string{"metrics.port=80"}, "/metrics/port"},
		{"audit interval in days", []string{"audit.interval=7d"}, "/audit/interval"},
		{"shared cache without a key", []string{"sharedCache.enabled=true", "sharedCache.address=redis://redis:6379"}, "/sharedCache/keySecret"},
		{"shared cache with a password in its address", []string{"sharedCache.enabled=true", "sharedCache.address=redis://:secret@redis:6379", "sharedCache.keySecret=k"}, "/sharedCache/address"},
		{"shared cache that is not Redis", []string{"sharedCache.enabled=true", "sharedCache.address=memcached://m:11211", "sharedCache.keySecret=k"}, "/sharedCache/address"},
		{"scrape both unverified and with a CA", []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.tls.insecureSkipVerify=true", "metrics.serviceMonitor.tls.caFile=/ca.crt"}, "give caFile or insecureSkipVerify, not both"},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			args := []string{"template", "signet", chart, "--namespace", "signet-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := h.run(args...)
			if err == nil {
				t.Fatalf("helm %s rendered:\n%s", strings.Join(args, " "), out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("helm %s failed with\n%s\nwant it to mention %q", strings.Join(args, " "), out, tc.want)
			}
		})
	}

	t.Run("crds are deploy/crds", func(t *testing.T) {
		want := readFiles(t, repoPath(t, "deploy/crds"))
		got := readFiles(t, filepath.Join(chart, "crds"))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s/crds differs from deploy/crds (run make generate) (-want +got):\n%s", chartDir, diff)
		}
	})
}

// helmCLI runs bin/helm with its cache, configuration and data in a temporary
// folder, so the test neither reads nor writes the user's.
type helmCLI struct {
	bin string
	env []string
}

func newHelmCLI(t *testing.T) *helmCLI {
	t.Helper()
	home := t.TempDir()
	env := os.Environ()
	for _, d := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		env = append(env, d+"="+filepath.Join(home, d))
	}
	// helm template and lint need no cluster; make sure they reach none.
	env = append(env, "KUBECONFIG="+filepath.Join(home, "no-kubeconfig"))
	return &helmCLI{bin: harness.Binary(t, "helm"), env: env}
}

// run returns helm's combined output.
func (h *helmCLI) run(args ...string) (string, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// decodeObjects parses multi-document YAML (helm's output), skipping
// documents that hold only comments.
func decodeObjects(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	rd := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading helm's output: %v", err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, doc)
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "{}" {
			continue
		}
		// As the API machinery decodes: whole numbers are int64.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			t.Fatalf("not a Kubernetes object: %v\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
}

// renderedObjects indexes rendered objects by kind and name.
type renderedObjects map[string]*unstructured.Unstructured

func byKindName(objs []*unstructured.Unstructured) renderedObjects {
	r := renderedObjects{}
	for _, o := range objs {
		r[o.GetKind()+"/"+o.GetName()] = o
	}
	return r
}

func (r renderedObjects) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s %s among the rendered objects", kind, name)
	}
	return o
}

func fieldOf[T any](t *testing.T, o *unstructured.Unstructured, path ...string) T {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s has no %s", o.GetKind(), o.GetName(), strings.Join(path, "."))
	}
	typed, ok := v.(T)
	if !ok {
		t.Fatalf("%s %s: %s is a %T", o.GetKind(), o.GetName(), strings.Join(path, "."), v)
	}
	return typed
}

// serveArgs returns the signet container's arguments, checking that they
// are a `signet serve` command line that signet itself parses.
func serveArgs(t *testing.T, dep *unstructured.Unstructured) []string {
	t.Helper()
	return commandArgs(t, dep, "serve")
}

// commandArgs returns the first container's arguments of a workload,
// checking that they are a `signet <command>` command line that signet
// itself parses.
func commandArgs(t *testing.T, workload *unstructured.Unstructured, command string) []string {
	t.Helper()
	containers := fieldOf[[]any](t, workload, "spec", "template", "spec", "containers")
	var args []string
	for _, a := range containers[0].(map[string]any)["args"].([]any) {
		args = append(args, a.(string))
	}
	cmd, rest, err := server.NewRootCommand().Find(args)
	if err != nil || cmd.Name() != command {
		t.Fatalf("container args %q are not a signet %s command line: %v", args, command, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("signet %s rejects the chart's args %q: %v", command, args, err)
	}
	return args
}

// checkOptIn checks that signet serve, the node agent and both webhooks'
// namespaceSelectors opt namespaces in by label exactly when label is set.
func checkOptIn(t *testing.T, r renderedObjects, fullname, label string, nodeAgent bool) {
	t.Helper()
	commands := map[string][]string{"signet serve": serveArgs(t, r.get(t, "Deployment", fullname+"-webhook"))}
	if nodeAgent {
		commands["signet node-agent"] = commandArgs(t, r.get(t, "DaemonSet", fullname+"-node-agent"), "node-agent")
	}
	for name, args := range commands {
		var got []string
		for _, a := range args {
			if strings.HasPrefix(a, "--namespace-opt-in") {
				got = append(got, a)
			}
		}
		var want []string
		if label != "" {
			want = []string{"--namespace-opt-in", "--namespace-opt-in-label=" + label}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s opt-in args (-want +got):\n%s", name, diff)
		}
	}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		for _, wh := range fieldOf[[]any](t, r.get(t, kind, fullname), "webhooks") {
			sel := wh.(map[string]any)["namespaceSelector"].(map[string]any)
			var got []any
			for _, e := range sel["matchExpressions"].([]any) {
				if e.(map[string]any)["key"] != "kubernetes.io/metadata.name" {
					got = append(got, e)
				}
			}
			var want []any
			if label != "" {
				want = []any{map[string]any{"key": label, "operator": "In", "values": []any{"true"}}}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s namespaceSelector opt-in expressions (-want +got):\n%s", kind, diff)
			}
		}
	}
}

// checkConsistent checks what the API server cannot: that the rendered
// objects name each other correctly.
func checkConsistent(t *testing.T, r renderedObjects, namespace, fullname string) {
	t.Helper()
	svcName := fullname + "-webhook"
	dep := r.get(t, "Deployment", svcName)
	args := serveArgs(t, dep)
	for _, want := range []string{
		"--validating-webhook=" + fullname,
		"--mutating-webhook=" + fullname,
		"--tls-host=" + svcName + "." + namespace + ".svc",
		"--exclude-namespace=" + namespace,
	} {
		if !slices.Contains(args, want) {
			t.Errorf("signet serve args %q lack %s", args, want)
		}
	}
	r.get(t, "Service", svcName)
	r.get(t, "PodDisruptionBudget", svcName)

	podLabels := fieldOf[map[string]any](t, dep, "spec", "template", "metadata", "labels")
	for _, sel := range []struct {
		kind string
		path []string
	}{
		{"Deployment", []string{"spec", "selector", "matchLabels"}},
		{"Service", []string{"spec", "selector"}},
		{"PodDisruptionBudget", []string{"spec", "selector", "matchLabels"}},
	} {
		for k, v := range fieldOf[map[string]any](t, r.get(t, sel.kind, svcName), sel.path...) {
			if podLabels[k] != v {
				t.Errorf("%s selector %s=%v does not select signet's pods (labels %v)", sel.kind, k, v, podLabels)
			}
		}
	}

	sa := fieldOf[string](t, dep, "spec", "template", "spec", "serviceAccountName")
	r.get(t, "ServiceAccount", sa)
	for _, b := range []string{"ClusterRoleBinding/" + fullname, "RoleBinding/" + fullname + "-secrets"} {
		kind, name, _ := strings.Cut(b, "/")
		want := []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": namespace}}
		if diff := cmp.Diff(want, fieldOf[[]any](t, r.get(t, kind, name), "subjects")); diff != "" {
			t.Errorf("%s subjects (-want +got):\n%s", b, diff)
		}
	}

	// signet may update exactly the webhook configurations it injects its CA into.
	var names []any
	for _, rule := range fieldOf[[]any](t, r.get(t, "ClusterRole", fullname), "rules") {
		if rn, ok := rule.(map[string]any)["resourceNames"]; ok {
			names = rn.([]any)
		}
	}
	if diff := cmp.Diff([]any{fullname}, names); diff != "" {
		t.Errorf("ClusterRole resourceNames (-want +got):\n%s", diff)
	}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		for _, wh := range fieldOf[[]any](t, r.get(t, kind, fullname), "webhooks") {
			svc := wh.(map[string]any)["clientConfig"].(map[string]any)["service"].(map[string]any)
			if svc["name"] != svcName || svc["namespace"] != namespace {
				t.Errorf("%s calls service %v/%v, want %s/%s", kind, svc["namespace"], svc["name"], namespace, svcName)
			}
		}
	}
}

// compareWithManifests checks that the chart with default values, released
// as signet in signet-system, grants the same permissions and registers the
// same webhooks as deploy/manifests.
// checkStopping: the pods stop as test/ha proves they may: a new pod
// ready before an old one stops, serving through --shutdown-delay, with a
// grace period covering the delay, the longest decision and its answer,
// spread over zones.
func checkStopping(t *testing.T, dep *unstructured.Unstructured, args []string) {
	t.Helper()
	if !slices.Contains(args, "--shutdown-delay=5s") {
		t.Errorf("signet serve args %q lack --shutdown-delay=5s", args)
	}
	if got := fieldOf[int64](t, dep, "spec", "template", "spec", "terminationGracePeriodSeconds"); got < 5+25+2 {
		t.Errorf("terminationGracePeriodSeconds %d: shorter than --shutdown-delay + the webhook timeout + 2s", got)
	}
	ru := fieldOf[map[string]any](t, dep, "spec", "strategy", "rollingUpdate")
	if fmt.Sprint(ru["maxUnavailable"]) != "0" || fmt.Sprint(ru["maxSurge"]) != "1" {
		t.Errorf("rolling update %v: want maxSurge 1, maxUnavailable 0", ru)
	}
	spread := fieldOf[[]any](t, dep, "spec", "template", "spec", "topologySpreadConstraints")
	if len(spread) != 1 || spread[0].(map[string]any)["topologyKey"] != "topology.kubernetes.io/zone" {
		t.Errorf("topologySpreadConstraints %v: want a spread over zones", spread)
	}
}

func compareWithManifests(t *testing.T, chart renderedObjects) {
	t.Helper()
	dir := repoPath(t, "deploy/manifests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("\n---\n")
		buf.Write(data)
	}
	plain := byKindName(decodeObjects(t, buf.String()))
	for _, f := range []struct {
		kind, name string
		path       []string
	}{
		{"ClusterRole", "signet", []string{"rules"}},
		{"Role", "signet-secrets", []string{"rules"}},
		{"Service", "signet-webhook", []string{"spec", "ports"}},
		{"PodDisruptionBudget", "signet-webhook", []string{"spec", "minAvailable"}},
		{"Deployment", "signet-webhook", []string{"spec", "replicas"}},
		{"Deployment", "signet-webhook", []string{"spec", "strategy"}},
		{"Deployment", "signet-webhook", []string{"spec", "template", "spec", "terminationGracePeriodSeconds"}},
		{"MutatingWebhookConfiguration", "signet", []string{"webhooks"}},
		{"ValidatingWebhookConfiguration", "signet", []string{"webhooks"}},
	} {
		want := fieldOf[any](t, plain.get(t, f.kind, f.name), f.path...)
		got := fieldOf[any](t, chart.get(t, f.kind, f.name), f.path...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s %s %s: chart differs from deploy/manifests (-manifests +chart):\n%s", f.kind, f.name, strings.Join(f.path, "."), diff)
		}
	}
}

func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// checkMonitoring checks the metrics values: with on, /metrics on port 9090
// of its own (--metrics-listen, the container and Service port "metrics"),
// scraped there by the ServiceMonitor, opened to the scrapers by the
// NetworkPolicy instead of 8443, and the PrometheusRule and the dashboard
// ConfigMap labelled as asked; with on false (the defaults), none of it.
// test/monitoring checks the alerts and the dashboard themselves.
func checkMonitoring(t *testing.T, r renderedObjects, fullname, namespace string, on bool) {
	t.Helper()
	dep := r.get(t, "Deployment", fullname+"-webhook")
	args := serveArgs(t, dep)
	if got := slices.Contains(args, "--metrics-listen=:9090"); got != on {
		t.Errorf("signet serve args %q: --metrics-listen=:9090 there is %v, want %v", args, got, on)
	}
	container := fieldOf[[]any](t, dep, "spec", "template", "spec", "containers")[0].(map[string]any)
	wantPorts := []any{map[string]any{"name": "https", "containerPort": int64(8443)}}
	svcPorts := []any{map[string]any{"name": "https", "port": int64(443), "targetPort": "https"}}
	if on {
		wantPorts = append(wantPorts, map[string]any{"name": "metrics", "containerPort": int64(9090)})
		svcPorts = append(svcPorts, map[string]any{"name": "metrics", "port": int64(9090), "targetPort": "metrics"})
	}
	if diff := cmp.Diff(wantPorts, container["ports"]); diff != "" {
		t.Errorf("container ports (-want +got):\n%s", diff)
	}
	svc := r.get(t, "Service", fullname+"-webhook")
	if diff := cmp.Diff(svcPorts, fieldOf[[]any](t, svc, "spec", "ports")); diff != "" {
		t.Errorf("Service ports (-want +got):\n%s", diff)
	}
	if !on {
		for key := range r {
			if kind, _, _ := strings.Cut(key, "/"); kind == "ServiceMonitor" || kind == "PrometheusRule" || kind == "ConfigMap" {
				t.Errorf("%s rendered with the metrics values off", key)
			}
		}
		return
	}

	sm := r.get(t, "ServiceMonitor", fullname+"-webhook")
	if got := sm.GetLabels()["release"]; got != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor label release=%q, want kube-prometheus-stack", got)
	}
	for k, v := range fieldOf[map[string]any](t, sm, "spec", "selector", "matchLabels") {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selector %s=%v does not select the Service (labels %v)", k, v, svc.GetLabels())
		}
	}
	if diff := cmp.Diff([]any{namespace}, fieldOf[[]any](t, sm, "spec", "namespaceSelector", "matchNames")); diff != "" {
		t.Errorf("ServiceMonitor namespaces (-want +got):\n%s", diff)
	}
	wantEndpoints := []any{map[string]any{"port": "metrics", "scheme": "http", "path": "/metrics", "interval": "30s"}}
	if diff := cmp.Diff(wantEndpoints, fieldOf[[]any](t, sm, "spec", "endpoints")); diff != "" {
		t.Errorf("ServiceMonitor endpoints (-want +got):\n%s", diff)
	}

	pr := r.get(t, "PrometheusRule", fullname)
	if got := pr.GetLabels()["release"]; got != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule label release=%q, want kube-prometheus-stack", got)
	}
	for _, g := range fieldOf[[]any](t, pr, "spec", "groups") {
		for _, rule := range g.(map[string]any)["rules"].([]any) {
			if expr := rule.(map[string]any)["expr"].(string); !strings.Contains(expr, `job="`+fullname+`-webhook",namespace="`+namespace+`"`) {
				t.Errorf("alert %v does not select the ServiceMonitor's series: %s", rule.(map[string]any)["alert"], expr)
			}
		}
	}

	cm := r.get(t, "ConfigMap", fullname+"-dashboard")
	if got := cm.GetLabels()["grafana_dashboard"]; got != "1" {
		t.Errorf("dashboard ConfigMap label grafana_dashboard=%q, want 1", got)
	}
	if !strings.Contains(fieldOf[string](t, cm, "data", "signet-dashboard.json"), `"uid": "signet-overview"`) {
		t.Error("the dashboard ConfigMap does not hold files/signet-dashboard.json")
	}

	np := r.get(t, "NetworkPolicy", fullname+"-webhook")
	var ports []any
	for _, rule := range fieldOf[[]any](t, np, "spec", "ingress") {
		ports = append(ports, rule.(map[string]any)["ports"].([]any)[0].(map[string]any)["port"])
	}
	if diff := cmp.Diff([]any{int64(8443), int64(9090)}, ports); diff != "" {
		t.Errorf("NetworkPolicy ports: the API server's, then the scrapers' (-want +got):\n%s", diff)
	}
}

// checkCloud: --registry-credential-providers as the values say, the AKS
// workload identity pod label exactly with azure, the service account's
// annotations as given.
// checkSharedCache checks that signet serve shares results exactly when
// the values say, reading its key and password from the Secrets named, as
// files the container mounts.
func checkSharedCache(t *testing.T, dep *unstructured.Unstructured, args []string, on bool) {
	t.Helper()
	flags := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--shared-cache") {
			flags[k] = v
		}
	}
	if !on {
		if len(flags) > 0 {
			t.Errorf("signet serve args %q: shared cache flags without sharedCache.enabled", args)
		}
		return
	}
	want := map[string]string{"--shared-cache": "redis://redis.cache.svc:6379/1", "--shared-cache-timeout": "150ms",
		"--shared-cache-key-file": flags["--shared-cache-key-file"], "--shared-cache-password-file": flags["--shared-cache-password-file"]}
	if diff := cmp.Diff(want, flags); diff != "" {
		t.Errorf("shared cache flags (-want +got):\n%s", diff)
	}
	var spec corev1.PodSpec
	raw, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
		t.Fatal(err)
	}
	for flag, secret := range map[string]string{"--shared-cache-key-file": "signet-shared-cache", "--shared-cache-password-file": "signet-redis"} {
		found := false
		for _, m := range spec.Containers[0].VolumeMounts {
			rel, ok := strings.CutPrefix(flags[flag], m.MountPath+"/")
			if !ok {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret && len(v.Secret.Items) == 1 && v.Secret.Items[0].Path == rel {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s=%s is not a file of the mounted Secret %s", flag, flags[flag], secret)
		}
	}
	if spec.SecurityContext.FSGroup == nil {
		t.Error("no fsGroup: the Secret files (mode 0440) are not readable by signet's user")
	}
}

func checkCloud(t *testing.T, dep, sa *unstructured.Unstructured, args []string, cloud string) {
	t.Helper()
	has := slices.Contains(args, "--registry-credential-providers="+cloud)
	if cloud == "" {
		has = !slices.ContainsFunc(args, func(s string) bool { return strings.HasPrefix(s, "--registry-credential-providers") })
	}
	if !has {
		t.Errorf("signet serve args %q: want --registry-credential-providers=%q", args, cloud)
	}
	labels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	azure := slices.Contains(strings.Split(cloud, ","), "azure")
	if got := labels["azure.workload.identity/use"] == "true"; got != azure {
		t.Errorf("pod labels %v: azure.workload.identity/use=true should be there exactly with the azure provider", labels)
	}
	if azure && sa.GetAnnotations()["azure.workload.identity/client-id"] == "" {
		t.Errorf("service account annotations %v lack the client id given", sa.GetAnnotations())
	}
}
