// Package nodeagent tests `signet node-agent`'s core against the real API
// server (bin/kube-apiserver and bin/etcd from `make tools`): the files in
// the policy directory follow policies and namespaces as they are created,
// changed and deleted.
package nodeagent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/nodeagent"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/policyjson"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

func pemKey(t *testing.T) []byte {
	t.Helper()
	return sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t))
}

// state reads the directory: namespace → scope → requirement types.
func state(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a write in progress (temporary file, renamed over <ns>.json)
		}
		ns, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			t.Errorf("unexpected file %s (a temporary file left behind?)", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var f policyjson.File
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s is not a policy.json: %v\n%s", e.Name(), err, data)
		}
		scopes := map[string]string{"default": types(f.Default)}
		for s, reqs := range f.Transports[policyjson.TransportDocker] {
			scopes[s] = types(reqs)
		}
		out[ns] = scopes
	}
	return out
}

func types(reqs []policyjson.Requirement) string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Type)
	}
	sort.Strings(out)
	return strings.Join(out, "+")
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestNodeAgentFollowsTheCluster(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := sigstoretest.New(t)
	cl := c.Client
	create := func(obj client.Object) {
		t.Helper()
		if err := cl.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "signet-system"}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "ci-key"}, Data: map[string][]byte{"cosign.pub": pemKey(t)}})

	dir := t.TempDir()
	regsDir := t.TempDir()
	metrics := prometheus.NewRegistry()
	agent, err := nodeagent.New(c.Config, &nodeagent.Agent{
		Dir:           dir,
		RegistriesDir: regsDir,
		Namespace:     "signet-system",
		Config:        policy.Config{Unmatched: "deny", ExcludedNamespaces: []string{"signet-system", "kube-system"}},
		Trust:         func() (root.TrustedMaterial, error) { return s.TrustedRoot(), nil },
		Resync:        time.Hour, // events only: every change below must come from a watch
		Metrics:       metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	errc := run(ctx, t, agent)

	eventually := func(what string, want map[string]map[string]string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := state(t, dir)
			diff := cmp.Diff(want, got)
			if diff == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the files did not follow (-want +got):\n%s", what, diff)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rejectAll := map[string]string{"default": "reject"}
	acceptAll := map[string]string{"default": "insecureAcceptAnything"}
	eventually("start", map[string]map[string]string{
		"default": rejectAll, "kube-public": rejectAll, "kube-node-lease": rejectAll,
		"kube-system": acceptAll, "signet-system": acceptAll,
	})

	// A new namespace gets its file.
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"env": "prod"}}})
	base := map[string]map[string]string{
		"default": rejectAll, "kube-public": rejectAll, "kube-node-lease": rejectAll,
		"kube-system": acceptAll, "signet-system": acceptAll, "team-a": rejectAll,
	}
	eventually("namespace created", base)

	// A cluster policy with a key from a Secret: every enforced namespace.
	cip := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "org"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Prefix: "reg.example.org/org"}},
		Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "ci-key"}}, InsecureIgnoreTlog: true}},
	}}
	create(cip)
	with := func(extra map[string]map[string]string) map[string]map[string]string {
		out := map[string]map[string]string{}
		for ns, scopes := range base {
			out[ns] = map[string]string{}
			for k, v := range scopes {
				out[ns][k] = v
			}
			for k, v := range extra[ns] {
				out[ns][k] = v
			}
		}
		return out
	}
	orgSigned := map[string]string{"reg.example.org/org": "sigstoreSigned"}
	eventually("cluster policy created", with(map[string]map[string]string{"default": orgSigned, "kube-public": orgSigned, "kube-node-lease": orgSigned, "team-a": orgSigned}))
	regs, err := os.ReadFile(filepath.Join(regsDir, "signet.yaml"))
	if err != nil || !strings.Contains(string(regs), `"reg.example.org/org":`) {
		t.Errorf("registries.d/signet.yaml does not turn on sigstore attachments for reg.example.org/org (%v):\n%s", err, regs)
	}

	// An ImagePolicy changes its namespace's file only: the others are not
	// rewritten (same inode: no rename happened).
	defaultInode := inode(t, filepath.Join(dir, "default.json"))
	create(&v1alpha1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "team"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: "reg.example.org/team-a/**"}},
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "fail"}}},
	}})
	eventually("image policy created", with(map[string]map[string]string{
		"default": orgSigned, "kube-public": orgSigned, "kube-node-lease": orgSigned,
		"team-a": {"reg.example.org/org": "sigstoreSigned", "reg.example.org/team-a": "reject"},
	}))
	if got := inode(t, filepath.Join(dir, "default.json")); got != defaultInode {
		t.Errorf("default.json was rewritten although its content did not change")
	}

	// Updating the cluster policy moves its scope everywhere.
	if err := cl.Get(ctx, client.ObjectKeyFromObject(cip), cip); err != nil {
		t.Fatal(err)
	}
	cip.Spec.Images = []v1alpha1.ImageMatcher{{Glob: "reg.example.org/platform/**"}}
	if err := cl.Update(ctx, cip); err != nil {
		t.Fatal(err)
	}
	platform := map[string]string{"reg.example.org/platform": "sigstoreSigned"}
	eventually("cluster policy updated", with(map[string]map[string]string{
		"default": platform, "kube-public": platform, "kube-node-lease": platform,
		"team-a": {"reg.example.org/platform": "sigstoreSigned", "reg.example.org/team-a": "reject"},
	}))

	// A policy policy.json cannot express: every namespace it applies in
	// fails closed (reject for its scope and the others'), and says so.
	create(&v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "regexp"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "ghcr.io/acme/**"}},
		Match:  &v1alpha1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
		Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{
			{Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: "https://github.com/acme/.+"},
		}}}},
	}})
	eventually("inexpressible policy", with(map[string]map[string]string{
		"default": platform, "kube-public": platform, "kube-node-lease": platform,
		"team-a": {"reg.example.org/platform": "reject", "reg.example.org/team-a": "reject", "ghcr.io/acme": "reject"},
	}))
	if got := gauge(t, metrics, "team-a"); got != 1 {
		t.Errorf("signet_node_agent_fail_closed{namespace=team-a} = %v, want 1", got)
	}
	if got := gauge(t, metrics, "default"); got != 0 {
		t.Errorf("signet_node_agent_fail_closed{namespace=default} = %v, want 0", got)
	}

	// A deleted namespace's file is removed (envtest runs no namespace
	// controller: the namespace stays Terminating, which is enough).
	if err := cl.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	delete(base, "team-a")
	eventually("namespace deleted", with(map[string]map[string]string{"default": platform, "kube-public": platform, "kube-node-lease": platform}))

	// Deleting the policy reverts the files.
	if err := cl.Delete(ctx, cip); err != nil {
		t.Fatal(err)
	}
	eventually("cluster policy deleted", base)

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after its context ended")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// startCluster starts an API server with signet's CRDs.
func startCluster(t *testing.T) *harness.Cluster {
	t.Helper()
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	return harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
}

// run runs the agent until ctx ends and waits for its first files; the
// channel receives what Run returns.
func run(ctx context.Context, t *testing.T, agent *nodeagent.Agent) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- agent.Run(ctx) }()
	select {
	case <-agent.Synced():
	case err := <-errc:
		t.Fatalf("the agent stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent wrote no files within 30s")
	}
	return errc
}

func gauge(t *testing.T, g prometheus.Gatherer, namespace string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "signet_node_agent_fail_closed" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && l.GetValue() == namespace {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	rootDir, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(rootDir, rel)
}

// TestNodeAgentReadsRemoteTrustRootsFromServesState: the agent does not
// fetch TUF mirrors. A policy naming a remote TrustRoot fails closed on the
// node until signet serve's leader has saved the TrustRoot's TUF state;
// as soon as it has (the agent watches), the agent verifies that state from
// the TrustRoot's initial root and exports the policy. A state that does
// not verify stays refused.
func TestNodeAgentReadsRemoteTrustRootsFromServesState(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cl := c.Client
	s := sigstoretest.New(t)
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	saved, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	foreign := tuftest.New(t) // another repository: its root does not sign the first's
	foreign.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	foreignSaved, err := trust.PackDirectory(foreign.Dir())
	if err != nil {
		t.Fatal(err)
	}

	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "signet-system"}},
		// The mirror is never asked: nothing answers there.
		&v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: "mirror"}, Spec: v1alpha1.TrustRootSpec{
			Remote: &v1alpha1.TUFRemote{Mirror: "https://tuf.invalid", Root: repo.InitialRoot()}}},
		&v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "keyless"}, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Prefix: "ghcr.io/acme"}},
			Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{TrustRootRef: "mirror", Identities: []v1alpha1.Identity{
				{Issuer: "https://accounts.google.com", Subject: "release@acme.example"}, // policy.json matches email subjects
			}}}},
		}},
	} {
		if err := cl.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}

	dir := t.TempDir()
	metrics := prometheus.NewRegistry()
	agent, err := nodeagent.New(c.Config, &nodeagent.Agent{
		Dir: dir, RegistriesDir: t.TempDir(), Namespace: "signet-system",
		Config:  policy.Config{Unmatched: "deny", ExcludedNamespaces: []string{"signet-system", "kube-system"}},
		Trust:   func() (root.TrustedMaterial, error) { return s.TrustedRoot(), nil },
		Resync:  time.Hour,
		Metrics: metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(ctx, t, agent)
	eventually := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := state(t, dir)["default"]["ghcr.io/acme"]
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: ghcr.io/acme in default.json is %q, want %q", what, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	saveState := func(data []byte) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "signet-trustroot-mirror"}}
		err := cl.Get(ctx, client.ObjectKeyFromObject(cm), cm)
		cm.BinaryData = map[string][]byte{"repository.tar.gz": data}
		if err == nil {
			err = cl.Update(ctx, cm)
		} else {
			err = cl.Create(ctx, cm)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// The policy does not compile without its TrustRoot's material: its
	// scope rejects every image (fail closed).
	eventually("nothing saved yet", "reject")
	// The agent watches the ConfigMaps of signet's namespace (Resync is an
	// hour): saving the state is enough.
	saveState(foreignSaved)
	time.Sleep(time.Second) // give a wrong acceptance the time to show
	eventually("a saved state from another repository", "reject")
	saveState(saved)
	eventually("the saved state", "sigstoreSigned")
	if got := gauge(t, metrics, "default"); got != 0 {
		t.Errorf("signet_node_agent_fail_closed{namespace=default} = %v, want 0", got)
	}
}
