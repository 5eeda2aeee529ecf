package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
	"github.com/signet-dev/signet/test/webhook"
)

// airGap replaces http.DefaultTransport (which signet serve's registry
// client and TUF mirrors start from) with one that refuses to dial any
// address but loopback, and records what was refused: the test's "no route
// to any public host", checked rather than assumed.
type airGap struct {
	mu      sync.Mutex
	refused []string
}

func startAirGap(t *testing.T) *airGap {
	g := &airGap{}
	orig := http.DefaultTransport
	tr := orig.(*http.Transport).Clone()
	tr.Proxy = nil
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			g.mu.Lock()
			g.refused = append(g.refused, addr)
			g.mu.Unlock()
			return nil, fmt.Errorf("air gap: no route to %s", addr)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	http.DefaultTransport = tr
	t.Cleanup(func() { http.DefaultTransport = orig })
	// The guard itself works: a public address is refused before any
	// packet leaves.
	resp, err := http.Get("https://tuf-repo-cdn.sigstore.dev/timestamp.json")
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "air gap") {
		t.Fatalf("the air gap let a request through: %v", err)
	}
	g.refused = nil
	return g
}

func (g *airGap) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.refused) > 0 {
		t.Errorf("signet tried to reach non-loopback addresses: %v", g.refused)
	}
}

// trustWorld is a real API server with signet serve as its webhook (TUF off,
// namespace opt-in by seed 004's label, seedOptInLabel), a registry, and a
// local Sigstore.
type trustWorld struct {
	cluster *harness.Cluster
	reg     *registrytest.Registry
	sig     *sigstoretest.Sigstore
	wh      *webhook.Webhook
	pushed  int
}

// seedOptInLabel is the namespace label seed 004 (policy-controller) opts
// namespaces in with.
const seedOptInLabel = "policy.sigstore.dev/include"

const (
	ghWorkflow = "https://github.com/stackabletech/docker-images/.github/workflows/build.yml@refs/tags/25.3.0"
)

// signed pushes an image to repo signed keyless (bundle format) by s.
func (w *trustWorld) signed(t *testing.T, s *sigstoretest.Sigstore, repo, subject string) registrytest.Image {
	t.Helper()
	w.pushed++
	img := w.reg.PushRandomImage(t, repo, fmt.Sprintf("v%d", w.pushed))
	name, _, _ := strings.Cut(img.Ref, "@")
	o := sigstoretest.SignOptions{Identity: subject, Issuer: sigstoretest.GitHubIssuer}
	w.reg.AttachBundle(t, img, s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, name, img.Digest), o))
	return img
}

func (w *trustWorld) unsigned(t *testing.T, repo string) registrytest.Image {
	t.Helper()
	w.pushed++
	return w.reg.PushRandomImage(t, repo, fmt.Sprintf("v%d", w.pushed))
}

// keylessPolicy selects repo/** and trusts subjectRegExp through trustRoot.
func (w *trustWorld) keylessPolicy(t *testing.T, name, repo, subjectRegExp, trustRoot string) {
	t.Helper()
	p := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: w.reg.Host + "/" + repo + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", Keyless: &v1alpha1.KeylessAuthority{
			Identities:   []v1alpha1.Identity{{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: subjectRegExp}},
			TrustRootRef: trustRoot,
		}}},
	}}
	if err := w.cluster.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// namespace creates a namespace labelled label=true ("": unlabelled).
func (w *trustWorld) namespace(t *testing.T, name, label string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if label != "" {
		ns.Labels = map[string]string{label: "true"}
	}
	if err := w.cluster.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
}

func (w *trustWorld) trustRoot(t *testing.T, name string, spec v1alpha1.TrustRootSpec) {
	t.Helper()
	tr := &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := w.cluster.Client.Create(t.Context(), tr); err != nil {
		t.Fatalf("creating TrustRoot %s: %v", name, err)
	}
}

// ready waits for the TrustRoot's Ready condition and returns its status.
func (w *trustWorld) ready(t *testing.T, name string) v1alpha1.TrustRootStatus {
	t.Helper()
	var tr v1alpha1.TrustRoot
	eventually(t, "TrustRoot "+name+" Ready", func() error {
		if err := w.cluster.Client.Get(t.Context(), client.ObjectKey{Name: name}, &tr); err != nil {
			return err
		}
		c := meta.FindStatusCondition(tr.Status.Conditions, "Ready")
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != tr.Generation {
			return fmt.Errorf("Ready is %+v", c)
		}
		return nil
	})
	return tr.Status
}

func (w *trustWorld) admitted(t *testing.T, ns, name, image string) {
	t.Helper()
	eventually(t, name+" admitted", func() error {
		return w.cluster.Client.Create(t.Context(), pod(ns, name, image))
	})
}

func (w *trustWorld) denied(t *testing.T, ns, name, image string, parts ...string) {
	t.Helper()
	wantDenied(t, w.cluster.Client.Create(t.Context(), pod(ns, name, image)), parts...)
}

func pemOf(t *testing.T, certs ...*x509.Certificate) string {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(out)
}

func pemPublicKey(t *testing.T, k any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keysSpec gives a Sigstore's material as a TrustRoot's keys.
func keysSpec(t *testing.T, s *sigstoretest.Sigstore) *v1alpha1.TrustRootKeys {
	tr := s.TrustedRoot()
	k := &v1alpha1.TrustRootKeys{CertificateAuthorities: []v1alpha1.CertificateAuthorityKey{{URI: sigstoretest.FulcioURL, CertChain: pemOf(t, s.Chain()...)}}}
	for _, l := range tr.RekorLogs() {
		k.TransparencyLogs = append(k.TransparencyLogs, v1alpha1.LogPublicKey{BaseURL: l.BaseURL, PublicKey: pemPublicKey(t, l.PublicKey)})
	}
	for _, l := range tr.CTLogs() {
		k.CTLogs = append(k.CTLogs, v1alpha1.LogPublicKey{BaseURL: l.BaseURL, PublicKey: pemPublicKey(t, l.PublicKey)})
	}
	for _, a := range tr.TimestampingAuthorities() {
		tsa := a.(*root.SigstoreTimestampingAuthority)
		chain := append(append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...), tsa.Root)
		k.TimestampAuthorities = append(k.TimestampAuthorities, v1alpha1.CertificateAuthorityKey{URI: tsa.URI, CertChain: pemOf(t, chain...)})
	}
	return k
}

// TestTrustRoots runs signet serve against a real API server, with no
// route to any non-loopback address: keyless images verified through each
// kind of TrustRoot, TrustRoot changes and refreshes taking effect without
// a restart (and past the cache), status and metrics, CEL validation, and
// seed 004's air-gapped Stackable scenario end to end.
func TestTrustRoots(t *testing.T) {
	gap := startAirGap(t)
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	w := &trustWorld{
		cluster: harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme)),
		reg:     registrytest.StartInProcess(t, true),
		sig:     sigstoretest.New(t),
	}
	w.wh = webhook.Start(t, w.cluster, "--allow-http-registry", "--decision-timeout", "10s", "--namespace-opt-in", "--namespace-opt-in-label", seedOptInLabel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", w.wh.Logs())
		}
	})
	ctx := t.Context()
	want, err := trust.NewMaterial(w.sig.TrustedRootJSON())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("CEL validation", func(t *testing.T) {
		for _, tc := range []struct {
			spec v1alpha1.TrustRootSpec
			want string
		}{
			{v1alpha1.TrustRootSpec{}, "give exactly one of remote, repository, trustedRoot or keys"},
			{v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: "{}"}, Keys: keysSpec(t, w.sig)}, "give exactly one of remote, repository, trustedRoot or keys"},
			{v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{}}, "give exactly one of data or configMapRef"},
			{v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: "http://127.0.0.1:1", Root: []byte("{}"), RefreshInterval: &metav1.Duration{Duration: time.Second}}}, "refreshInterval must be at least 1m"},
			{v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: "ftp://x", Root: []byte("{}")}}, "spec.remote.mirror"},
			{v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{}}, "give at least one certificate authority"},
		} {
			err := w.cluster.Client.Create(ctx, &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{GenerateName: "invalid-"}, Spec: tc.spec})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: err = %v, want %q", tc.spec, err, tc.want)
			}
		}
	})

	// One TrustRoot of each kind holding the local Sigstore's root, each
	// named by a policy over its own repository.
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, w.sig.TrustedRootJSON())
	mirror := repo.Serve(t)
	packed, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "sigstore-root"},
		Data: map[string]string{"trusted_root.json": string(w.sig.TrustedRootJSON())}}
	if err := w.cluster.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]v1alpha1.TrustRootSpec{
		"remote":     {Remote: &v1alpha1.TUFRemote{Mirror: mirror.URL, Root: repo.InitialRoot()}},
		"repository": {Repository: &v1alpha1.TUFRepository{MirrorFS: packed, Root: repo.InitialRoot()}},
		"inline":     {TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(w.sig.TrustedRootJSON())}},
		"configmap":  {TrustedRoot: &v1alpha1.TrustedRootSource{ConfigMapRef: &v1alpha1.ConfigMapKeyRef{Name: "sigstore-root"}}},
		"keys":       {Keys: keysSpec(t, w.sig)},
	}
	w.namespace(t, "kinds", seedOptInLabel)
	for kind, spec := range kinds {
		w.trustRoot(t, "kind-"+kind, spec)
		w.keylessPolicy(t, "kind-"+kind, "kind-"+kind, `https://github\.com/stackabletech/.+`, "kind-"+kind)
	}
	for _, kind := range []string{"remote", "repository", "inline", "configmap", "keys"} {
		t.Run(kind, func(t *testing.T) {
			st := w.ready(t, "kind-"+kind)
			if kind != "keys" && st.Version != want.Version {
				t.Errorf("status version %s, want %s", st.Version, want.Version)
			}
			if st.Expires == nil || st.LastRefreshTime == nil {
				t.Errorf("status lacks expiry or refresh time: %+v", st)
			}
			if (kind == "remote" || kind == "repository") != (st.MetadataExpires != nil) {
				t.Errorf("metadataExpires %v for %s", st.MetadataExpires, kind)
			}
			repoName := "kind-" + kind + "/app"
			w.admitted(t, "kinds", kind+"-signed", w.signed(t, w.sig, repoName, ghWorkflow).Tag)
			w.denied(t, "kinds", kind+"-unsigned", w.unsigned(t, repoName).Tag, "denied by policy kind-"+kind, "no signature found")
			// Signed by another Sigstore: its certificate chains to nothing
			// this TrustRoot trusts.
			w.denied(t, "kinds", kind+"-foreign", w.signed(t, sigstoretest.New(t), repoName, ghWorkflow).Tag, "denied by policy kind-"+kind)
		})
	}

	t.Run("the leader saves a remote TrustRoot's TUF state for restarts", func(t *testing.T) {
		eventually(t, "saved state", func() error {
			var cm corev1.ConfigMap
			if err := w.cluster.Client.Get(ctx, client.ObjectKey{Namespace: "signet-system", Name: "signet-trustroot-kind-remote"}, &cm); err != nil {
				return err
			}
			data := cm.BinaryData["repository.tar.gz"]
			if len(data) == 0 {
				return errors.New("no repository.tar.gz")
			}
			// It verifies from the TrustRoot's initial root, offline.
			c, err := trust.NewTUF(repo.InitialRoot(), nil)
			if err != nil {
				return err
			}
			m, err := c.Restore(ctx, data)
			if err != nil {
				return err
			}
			if m.Version != want.Version {
				return fmt.Errorf("saved state holds %s, want %s", m.Version, want.Version)
			}
			return nil
		})
	})

	t.Run("missing TrustRoot fails closed", func(t *testing.T) {
		w.keylessPolicy(t, "dangling", "dangling", ".*", "no-such-root")
		eventually(t, "dangling denial", func() error {
			err := w.cluster.Client.Create(ctx, pod("kinds", "dangling", w.signed(t, w.sig, "dangling/app", ghWorkflow).Tag))
			if err == nil || !strings.Contains(err.Error(), `TrustRoot "no-such-root" does not exist`) {
				return fmt.Errorf("got %w", err)
			}
			return nil
		})
	})

	t.Run("changes take effect without a restart and past the cache", func(t *testing.T) {
		other := sigstoretest.New(t)
		// An inline root changed in place.
		w.trustRoot(t, "rotating-inline", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(w.sig.TrustedRootJSON())}})
		w.keylessPolicy(t, "rotating-inline", "rotating-inline", ".*", "rotating-inline")
		img := w.signed(t, other, "rotating-inline/app", ghWorkflow)
		w.ready(t, "rotating-inline")
		eventually(t, "denial under the old root", func() error {
			err := w.cluster.Client.Create(ctx, pod("kinds", "rot-inline-1", img.Tag))
			if err == nil || !strings.Contains(err.Error(), "denied by policy rotating-inline") {
				return fmt.Errorf("got %w", err)
			}
			return nil
		})
		var tr v1alpha1.TrustRoot
		if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: "rotating-inline"}, &tr); err != nil {
			t.Fatal(err)
		}
		tr.Spec.TrustedRoot.Data = string(other.TrustedRootJSON())
		if err := w.cluster.Client.Update(ctx, &tr); err != nil {
			t.Fatal(err)
		}
		// The denial is cached for 30s; admission within the 20s of
		// eventually proves the trust version is part of the key.
		w.admitted(t, "kinds", "rot-inline-2", img.Tag)

		// A remote root whose repository publishes a new target, picked
		// up on demand (the refresh annotation) without touching the spec.
		rrepo := tuftest.New(t)
		rrepo.AddTarget(trust.DefaultTrustedRootTarget, w.sig.TrustedRootJSON())
		rsrv := rrepo.Serve(t)
		w.trustRoot(t, "rotating-remote", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: rsrv.URL, Root: rrepo.InitialRoot()}})
		w.keylessPolicy(t, "rotating-remote", "rotating-remote", ".*", "rotating-remote")
		img = w.signed(t, other, "rotating-remote/app", ghWorkflow)
		first := w.ready(t, "rotating-remote")
		w.denied(t, "kinds", "rot-remote-1", img.Tag, "denied by policy rotating-remote")
		rrepo.RotateRoot()
		rrepo.AddTarget(trust.DefaultTrustedRootTarget, other.TrustedRootJSON())
		if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: "rotating-remote"}, &tr); err != nil {
			t.Fatal(err)
		}
		tr.Annotations = map[string]string{"signet.dev/refresh": "1"}
		if err := w.cluster.Client.Update(ctx, &tr); err != nil {
			t.Fatal(err)
		}
		w.admitted(t, "kinds", "rot-remote-2", img.Tag)
		second := w.ready(t, "rotating-remote")
		if second.Version == first.Version {
			t.Errorf("status version did not change: %s", second.Version)
		}

		// The mirror goes down and a refresh is asked for: the last good
		// root stays in use and the status says the refresh failed.
		rsrv.SetDown(true)
		if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: "rotating-remote"}, &tr); err != nil {
			t.Fatal(err)
		}
		tr.Annotations["signet.dev/refresh"] = "2"
		if err := w.cluster.Client.Update(ctx, &tr); err != nil {
			t.Fatal(err)
		}
		eventually(t, "refresh failure in status", func() error {
			if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: "rotating-remote"}, &tr); err != nil {
				return err
			}
			c := meta.FindStatusCondition(tr.Status.Conditions, "Ready")
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != "RefreshFailed" {
				return fmt.Errorf("Ready is %+v", c)
			}
			return nil
		})
		w.admitted(t, "kinds", "rot-remote-3", img.Tag)
	})

	t.Run("metrics", func(t *testing.T) {
		m, err := w.wh.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{
			`signet_trustroot_refresh_total{result="success",trustroot="kind-remote"}`,
			`signet_trustroot_refresh_total{result="error",trustroot="rotating-remote"}`,
			`signet_trustroot_expiry_timestamp_seconds{trustroot="kind-repository"}`,
		} {
			if !strings.Contains(m, s) {
				t.Errorf("/metrics lacks %s", s)
			}
		}
	})

	t.Run("seed 004: air-gapped Stackable", func(t *testing.T) {
		// The operator builds the TrustRoot from a copy of the TUF
		// repository with the CLI, on the bastion host...
		stack := sigstoretest.New(t)
		srepo := tuftest.New(t)
		srepo.AddTarget(trust.DefaultTrustedRootTarget, stack.TrustedRootJSON())
		srepo.RotateRoot()
		srepo.Refresh()
		rootFile := filepath.Join(t.TempDir(), "root.json")
		if err := os.WriteFile(rootFile, srepo.InitialRoot(), 0o600); err != nil {
			t.Fatal(err)
		}
		manifest := filepath.Join(t.TempDir(), "stackable-trustroot.yaml")
		var out, errOut strings.Builder
		if code := cli.Execute(ctx, []string{"trustroot", "create", "stackable", "--from-dir", srepo.Dir(), "--root", rootFile, "-o", manifest}, &out, &errOut); code != 0 {
			t.Fatalf("signet trustroot create: exit %d: %s", code, errOut.String())
		}
		// ...and applies it in the cluster, with the seed's policy.
		data, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		var tr v1alpha1.TrustRoot
		if err := yaml.UnmarshalStrict(data, &tr); err != nil {
			t.Fatal(err)
		}
		if err := w.cluster.Client.Create(ctx, &tr, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("applying the TrustRoot manifest: %v", err)
		}
		w.keylessPolicy(t, "stackable-image-is-signed-by-github-actions", "sdp", `https://github.com/stackabletech/.+/.github/workflows/build.yml@refs.+`, "stackable")
		st := w.ready(t, "stackable")
		if st.MetadataExpires == nil {
			t.Error("the status does not say when the repository's metadata expires")
		}
		w.namespace(t, "stackable", seedOptInLabel)
		// signet's default label opts nothing in when another is configured.
		w.namespace(t, "elsewhere", "signet.dev/include")

		w.admitted(t, "stackable", "kafka", w.signed(t, stack, "sdp/kafka", ghWorkflow).Tag)
		w.denied(t, "stackable", "unsigned", w.unsigned(t, "sdp/kafka").Tag, "no signature found")
		w.denied(t, "stackable", "other-workflow", w.signed(t, stack, "sdp/kafka", "https://github.com/test/x/.github/workflows/build.yml@refs/heads/main").Tag, "does not match")
		// Not opted in: not enforced (seed 004's namespace label).
		if err := w.cluster.Client.Create(ctx, pod("elsewhere", "unsigned", w.unsigned(t, "sdp/kafka").Tag)); err != nil {
			t.Errorf("a namespace without the opt-in label is enforced: %v", err)
		}
	})

	gap.check(t)
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("test context canceled")
	}
}
