package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/harness"
)

// TestPolicyImpact runs signet policy impact against the real API server
// and registry: a cluster whose one policy lets every image of the
// registry in, running a Deployment and Pods in two namespaces (a Pod's
// container decided at the digest its status reports), and policy files
// that would deny some of them, change nothing, or cannot be read.
func TestPolicyImpact(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	signed := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, signed.Ref, key, harness.Legacy)
	unsigned := reg.PushRandomImage(t, "prod/app", "unsigned")
	ctx := t.Context()
	mustCreate := func(obj client.Object) {
		t.Helper()
		if err := c.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}

	// The cluster: every image of the registry passes.
	mustCreate(&v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "base"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "any", Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}})
	for _, ns := range []string{"team-a", "team-b"} {
		mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	web := deployment("team-a", "web", signed.Tag)
	mustCreate(web)
	legacy := deployment("team-a", "legacy", unsigned.Tag)
	mustCreate(legacy)
	// The legacy Deployment's ReplicaSet: its template is the Deployment's.
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "legacy-1", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "Deployment", Name: "legacy", UID: legacy.UID, Controller: ptr.To(true),
	}}}, Spec: appsv1.ReplicaSetSpec{Selector: legacy.Spec.Selector, Template: legacy.Spec.Template}}
	mustCreate(rs)
	mustCreate(pod("team-b", "signed", signed.Tag))
	// runner was created from a tag that now names another image: what
	// runs is the digest the kubelet reported, the unsigned image.
	runner := pod("team-b", "runner", reg.Host+"/prod/app:latest")
	runner.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	mustCreate(runner)
	runner.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "c0", Image: reg.Host + "/prod/app:latest", ImageID: "docker-pullable://" + unsigned.Ref,
	}}}
	if err := c.Client.Status().Update(ctx, runner); err != nil {
		t.Fatal(err)
	}
	// A finished Pod runs nothing.
	done := pod("team-b", "done", unsigned.Tag)
	mustCreate(done)
	done.Status.Phase = corev1.PodSucceeded
	if err := c.Client.Status().Update(ctx, done); err != nil {
		t.Fatal(err)
	}

	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	strict := fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: strict
spec:
  images:
  - glob: %s/prod/**
  authorities:
  - name: ci-key
    insecureIgnoreTlog: true
    key:
      data: |
%s`, reg.Host, indent(string(pub), "        "))
	strictFile := clitest.WriteFile(t, dir, "strict.yaml", strict)
	// Another registry's images: nothing running changes.
	unrelated := clitest.WriteFile(t, dir, "unrelated.yaml", `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: elsewhere
spec:
  images:
  - glob: other.example/**
  authorities:
  - name: none
    static:
      action: fail
`)
	// The same name as the cluster's policy: it replaces it.
	replace := clitest.WriteFile(t, dir, "base.yaml", fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: base
spec:
  images:
  - glob: %s/**
  mode: warn
  authorities:
  - name: nothing-passes
    static:
      action: fail
      message: frozen
`, reg.Host))

	impact := func(args ...string) clitest.Result {
		t.Helper()
		return clitest.Run(t, server.Execute, append([]string{"policy", "impact", "--kubeconfig", c.Kubeconfig, "--allow-http-registry"}, args...)...)
	}
	runnerImage := reg.Host + "/prod/app:latest@" + unsigned.Digest
	legacyWant := audit.Entry{
		Object: audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "legacy", UID: string(legacy.UID)},
		Path:   "spec.template.spec.containers[0].image", Image: unsigned.Tag, Digest: unsigned.Digest,
		Before: audit.OutcomeAllowed, Outcome: audit.OutcomeDenied, Policies: []string{"ClusterImagePolicy strict"},
	}
	runnerWant := audit.Entry{
		Object: audit.Object{APIVersion: "v1", Kind: "Pod", Namespace: "team-b", Name: "runner", UID: string(runner.UID)},
		Path:   "spec.containers[0].image", Image: runnerImage, Digest: unsigned.Digest,
		Before: audit.OutcomeAllowed, Outcome: audit.OutcomeDenied, Policies: []string{"ClusterImagePolicy strict"},
	}

	t.Run("a stricter policy lists exactly what it would deny", func(t *testing.T) {
		r := impact("--policy", strictFile)
		r.Want(t, cli.ExitDenied, "namespace team-a", "Deployment legacy", "namespace team-b", "Pod runner", runnerImage,
			"allowed → denied (ClusterImagePolicy strict)",
			"4 objects (4 images) decided: 2 images newly denied, 0 newly warned, 0 newly undecided, 0 newly allowed")
		for _, not := range []string{"web", "Pod signed", "legacy-1", "done"} {
			if strings.Contains(r.Stdout, not) {
				t.Errorf("the report names %s, which does not change:\n%s", not, r.Stdout)
			}
		}
	})

	t.Run("-o json", func(t *testing.T) {
		r := impact("--policy", strictFile, "-o", "json")
		r.Want(t, cli.ExitDenied)
		var got audit.Impact
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
			t.Fatalf("%v:\n%s", err, r.Stdout)
		}
		for i := range got.Entries {
			if len(got.Entries[i].Reasons) != 1 || !strings.Contains(got.Entries[i].Reasons[0], "ci-key") {
				t.Errorf("entry %d: reasons %q do not name the authority ci-key", i, got.Entries[i].Reasons)
			}
			got.Entries[i].Reasons = nil
		}
		want := audit.Impact{Compared: true, Entries: []audit.Entry{legacyWant, runnerWant},
			Summary: audit.ImpactSummary{Objects: 4, Images: 4, Denied: 2}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if again := impact("--policy", strictFile, "-o", "json"); again.Stdout != r.Stdout {
			t.Errorf("a second run prints other JSON:\n%s\n%s", r.Stdout, again.Stdout)
		}
	})

	t.Run("--namespace", func(t *testing.T) {
		r := impact("--policy", strictFile, "--namespace", "team-b", "-o", "json")
		r.Want(t, cli.ExitDenied)
		var got audit.Impact
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Entries) != 1 || got.Entries[0].Object.Name != "runner" || got.Summary.Objects != 2 {
			t.Errorf("want only team-b's runner of 2 objects:\n%s", r.Stdout)
		}
	})

	t.Run("a policy that changes nothing", func(t *testing.T) {
		impact("--policy", unrelated).Want(t, cli.ExitOK, "0 images newly denied, 0 newly warned")
	})

	t.Run("a policy replaces the cluster's of the same name", func(t *testing.T) {
		r := impact("--policy", replace)
		r.Want(t, cli.ExitOK, "allowed → warned (ClusterImagePolicy base)", "frozen", "0 images newly denied, 4 newly warned")
	})

	// A caller who may read workloads and policies but not Secrets: said
	// once, and images decided with local credentials (the registry needs
	// none).
	t.Run("a caller who may not read Secrets", func(t *testing.T) {
		viewer := impersonating(t, c, "impact-viewer", "apps", "batch", "signet.dev")
		r := clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", viewer, "--allow-http-registry", "--policy", strictFile)
		r.Want(t, cli.ExitDenied, "Pod runner", "2 images newly denied")
		if n := strings.Count(r.Stderr, "you may not read pull secrets"); n != 1 {
			t.Errorf("stderr says %d times that pull secrets cannot be read, want once:\n%s", n, r.Stderr)
		}
	})

	// A kind the caller may not list: nothing can be said of it (exit 2),
	// unless something else would be denied (exit 1).
	t.Run("a caller who may not list Deployments", func(t *testing.T) {
		podsOnly := impersonating(t, c, "impact-pods", "signet.dev")
		clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", podsOnly, "--allow-http-registry", "--policy", unrelated).
			Want(t, cli.ExitUndecided, "not read: deployments.apps", "2 objects (2 images) decided, 6 not read")
		clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", podsOnly, "--allow-http-registry", "--policy", strictFile).
			Want(t, cli.ExitDenied, "Pod runner", "1 image newly denied")
	})

	t.Run("bad input", func(t *testing.T) {
		impact("--policy", filepath.Join(dir, "missing.yaml")).Want(t, cli.ExitUndecided, "reading --policy", "missing.yaml")
		clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", filepath.Join(dir, "no-kubeconfig")).
			Want(t, cli.ExitUndecided, "reading the kubeconfig")
		nowhere := clitest.WriteFile(t, dir, "nowhere.kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: c
`)
		clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", nowhere).
			Want(t, cli.ExitUndecided, "127.0.0.1:1")
		impact("-o", "yaml").Want(t, cli.ExitUndecided, "--output must be text or json")
	})

	t.Run("the built signet runs it", func(t *testing.T) {
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin := t.TempDir()
		build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/signet", "./cmd/signet-server")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building signet and signet-server: %v\n%s", err, out)
		}
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--policy", strictFile}, cli.ExitDenied, "2 images newly denied"},
			{[]string{"--policy", unrelated}, cli.ExitOK, "0 images newly denied"},
			{[]string{"--policy", filepath.Join(dir, "missing.yaml")}, cli.ExitUndecided, "reading --policy"},
		} {
			cmd := exec.Command(filepath.Join(bin, "signet"), append([]string{"policy", "impact", "--kubeconfig", c.Kubeconfig, "--allow-http-registry"}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("signet policy impact %s: exit %d (want %d), output lacks %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out)
			}
		}
	})

	// Once the cluster enforces the stricter policy, impact without
	// --policy says what it denies today.
	t.Run("what the cluster denies today", func(t *testing.T) {
		clitest.Run(t, server.Execute, "policy", "impact", "--kubeconfig", c.Kubeconfig, "--allow-http-registry").
			Want(t, cli.ExitOK, "4 objects (4 images) decided: 0 images denied, 0 warned, 0 undecided today")
		if err := create(t, c, strict); err != nil {
			t.Fatal(err)
		}
		r := impact("-o", "json")
		r.Want(t, cli.ExitDenied)
		var got audit.Impact
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
			t.Fatal(err)
		}
		legacyNow, runnerNow := legacyWant, runnerWant
		legacyNow.Before, runnerNow.Before = "", ""
		for i := range got.Entries {
			got.Entries[i].Reasons = nil
		}
		want := audit.Impact{Entries: []audit.Entry{legacyNow, runnerNow}, Summary: audit.ImpactSummary{Objects: 4, Images: 4, Denied: 2}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		impact().Want(t, cli.ExitDenied, "denied (ClusterImagePolicy strict)", "2 images denied, 0 warned, 0 undecided today")
	})
}

// impersonating writes a kubeconfig of c acting as user, who may read
// Pods, ReplicationControllers, namespaces, service accounts and every
// resource of groups, but not Secrets.
func impersonating(t *testing.T, c *harness.Cluster, user string, groups ...string) string {
	t.Helper()
	ctx := t.Context()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "replicationcontrollers", "namespaces", "serviceaccounts", "configmaps"}, Verbs: []string{"get", "list"}},
		{APIGroups: groups, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
	}}
	if err := c.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	if err := c.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func deployment(ns, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: image}},
		}},
	}}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}
