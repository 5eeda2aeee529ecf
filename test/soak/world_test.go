package soak

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/faults"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/webhook"
)

// The deadlines and bounds the oracle relies on.
const (
	// decisionTimeout is signet's --decision-timeout, below the webhook's
	// 15 s timeoutSeconds (test/webhook).
	decisionTimeout = 3 * time.Second
	// propagation bounds how long after a write of a policy or TrustRoot
	// returns signet may still decide by the state before it (the watch,
	// the coalesced rebuild, the swap of the snapshot). Every change is
	// probed until it shows and the test fails if one took longer.
	propagation = 3 * time.Second
	// faultLag is how long after a fault is switched off it may still
	// make a decision undecided: a request stalled at the proxy before it
	// lasts until its decision's deadline, and a tag resolution in flight
	// is shared with the decisions that start meanwhile (failed ones are
	// not kept); plus a second of scheduling.
	faultLag = decisionTimeout + time.Second
	// hold is how long a state is kept once it has shown.
	hold = 4 * time.Second
	// workers is how many admissions are in flight at once (plus probes).
	workers = 4
)

// world is the cluster, registry, signatures, policies and signet serve
// of the soak, and what it has measured.
type world struct {
	t       *testing.T
	start   time.Time
	cluster *harness.Cluster
	client  client.Client // unthrottled, for the load
	reg     *registrytest.Registry
	proxy   *faults.Proxy
	cosign  *harness.Cosign
	key1    harness.KeyPair
	key2    harness.KeyPair
	pub1    string
	pub2    string
	sigA    *sigstoretest.Sigstore
	sigB    *sigstoretest.Sigstore
	wh      *webhook.Webhook
	tally   *tally
	names   atomic.Int64

	// The timelines the churners write.
	rotation, churn, tenant, trustRoot, fault *timeline

	mu       sync.Mutex
	subjects []*subject
	// propagation measured per timeline: from a write's return to the
	// answer of the first probe that showed it.
	shown map[string][]time.Duration
	// errs are the churners' failures (reported by the test goroutine).
	errs []string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		t:       t,
		cluster: harness.StartCluster(t, harness.WithCRDs(root+"/deploy/crds"), harness.WithScheme(scheme)),
		reg:     harness.StartRegistry(t),
		cosign:  harness.NewCosign(t),
		sigA:    sigstoretest.New(t),
		sigB:    sigstoretest.New(t),
		tally:   newTally(),
		shown:   map[string][]time.Duration{},
	}
	cfg := rest.CopyConfig(w.cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: the load is bounded by its workers
	if w.client, err = client.New(cfg, client.Options{Scheme: w.cluster.Scheme}); err != nil {
		t.Fatal(err)
	}
	w.proxy = faults.StartProxy(t, w.reg.Host)
	w.key1, w.key2 = w.cosign.GenerateKeyPair(t), w.cosign.GenerateKeyPair(t)
	w.pub1, w.pub2 = readFile(t, w.key1.Public), readFile(t, w.key2.Public)

	w.rotation = newTimeline("ClusterImagePolicy rotation", "key1", propagation)
	w.churn = newTimeline("ClusterImagePolicy churn", "absent", propagation)
	w.tenant = newTimeline("ImagePolicy tenant/extra", "absent", propagation)
	w.trustRoot = newTimeline("TrustRoot soak-root", "A-inline", propagation)
	w.fault = newTimeline("registry fault", string(faults.None), faultLag)

	w.images(t)
	w.policies(t)
	w.wh = webhook.Start(t, w.cluster, "--allow-http-registry", "--decision-timeout", decisionTimeout.String(),
		"--cache-ttl", "10s", "--cache-negative-ttl", "2s", "--log-level", "warn")
	// Every subject is decided as its initial state says before the load
	// starts (the informers have synced what was written before start).
	for _, s := range w.subjects {
		if _, ok := w.probe(s, s.want(stateOf(s)), time.Now(), 30*time.Second, false); !ok {
			t.Fatalf("%s is not decided as %s before the load:\n%s", s.name, s.want(stateOf(s)), w.wh.Logs())
		}
	}
	return w
}

func stateOf(s *subject) string {
	if s.tl == nil {
		return ""
	}
	return s.tl.current()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// images pushes and signs the images of the subjects and adds them.
func (w *world) images(t *testing.T) {
	t.Helper()
	push := func(repo string) registrytest.Image { return w.reg.PushRandomImage(t, repo, "v1") }
	sign := func(img registrytest.Image, key harness.KeyPair, f harness.Format) {
		w.cosign.Sign(t, img.Ref, key, f)
	}
	keyless := func(img registrytest.Image, s *sigstoretest.Sigstore) {
		n, _, _ := strings.Cut(img.Ref, "@")
		o := sigstoretest.SignOptions{Identity: "https://github.com/signet-dev/soak/.github/workflows/release.yml@refs/heads/main", Issuer: sigstoretest.GitHubIssuer}
		w.reg.AttachBundle(t, img, s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, n, img.Digest), o))
	}
	add := func(name, ns string, img registrytest.Image, tl *timeline, want func(string) outcome) {
		w.subjects = append(w.subjects, &subject{name: name, ns: ns, tag: img.Tag, ref: img.Ref, tl: tl, want: want})
	}
	has := func(key string) func(string) outcome {
		return func(st string) outcome {
			if strings.Contains(st, key) {
				return allowed
			}
			return refused
		}
	}

	// Key rotation: the policy trusts key1, then key1 and key2, then key2,
	// and back (release images, pushed as it goes, are re-signed with the
	// new key before the policy trusts only it).
	k1, k2, both, unsigned := push("rot/k1"), push("rot/k2"), push("rot/both"), push("rot/unsigned")
	sign(k1, w.key1, harness.Legacy)
	sign(k2, w.key2, harness.Bundle)
	sign(both, w.key1, harness.Legacy)
	sign(both, w.key2, harness.Bundle)
	add("rot/k1", "plain", k1, w.rotation, has("key1"))
	add("rot/k2", "plain", k2, w.rotation, has("key2"))
	add("rot/both", "plain", both, w.rotation, always(allowed))
	add("rot/unsigned", "plain", unsigned, w.rotation, always(refused))

	// A ClusterImagePolicy created, updated (mode, key) and deleted.
	k1, k2, unsigned = push("churn/k1"), push("churn/k2"), push("churn/unsigned")
	sign(k1, w.key1, harness.Legacy)
	sign(k2, w.key2, harness.Legacy)
	churn := func(signedBy string) func(string) outcome {
		return func(st string) outcome {
			switch {
			case st == "warn":
				return allowed
			case st == "enforce" && signedBy == "key1", st == "enforce-key2" && signedBy == "key2":
				return allowed
			}
			return refused // absent: unmatched, denied
		}
	}
	add("churn/k1", "plain", k1, w.churn, churn("key1"))
	add("churn/k2", "plain", k2, w.churn, churn("key2"))
	add("churn/unsigned", "plain", unsigned, w.churn, churn(""))

	// A tenant's ImagePolicy adding a key to a ClusterImagePolicy's, in
	// its namespace only.
	k1, both, unsigned = push("base/k1"), push("base/both"), push("base/unsigned")
	sign(k1, w.key1, harness.Legacy)
	sign(both, w.key1, harness.Legacy)
	sign(both, w.key2, harness.Legacy)
	add("tenant base/k1", "tenant", k1, w.tenant, func(st string) outcome {
		if st == "key2" {
			return refused
		}
		return allowed
	})
	add("tenant base/both", "tenant", both, w.tenant, always(allowed))
	add("tenant base/unsigned", "tenant", unsigned, w.tenant, always(refused))
	add("plain base/k1", "plain", k1, w.tenant, always(allowed))

	// Keyless through a TrustRoot that moves between two Sigstores, and
	// is deleted and created again.
	a, b, ab, unsigned := push("keyless/a"), push("keyless/b"), push("keyless/ab"), push("keyless/unsigned")
	keyless(a, w.sigA)
	keyless(b, w.sigB)
	keyless(ab, w.sigA)
	keyless(ab, w.sigB)
	trusted := func(by string) func(string) outcome {
		return func(st string) outcome {
			switch {
			case st == "absent":
				return refused | undecided // fails closed
			case strings.Contains(by, st[:1]):
				return allowed
			}
			return refused
		}
	}
	add("keyless/a", "plain", a, w.trustRoot, trusted("A"))
	add("keyless/b", "plain", b, w.trustRoot, trusted("B"))
	add("keyless/ab", "plain", ab, w.trustRoot, trusted("AB"))
	add("keyless/unsigned", "plain", unsigned, w.trustRoot, trusted(""))

	// Registry faults on the images of a policy whose onError is deny,
	// admitted through the proxy: could not decide, or what the policy
	// says; never the opposite of what it says.
	k1, unsigned = push("flaky/k1"), push("flaky/unsigned")
	sign(k1, w.key1, harness.Legacy)
	fault := func(decided outcome) func(string) outcome {
		return func(st string) outcome {
			if st == string(faults.None) {
				return decided
			}
			return decided | undecided
		}
	}
	via := func(img registrytest.Image) registrytest.Image {
		img.Tag = strings.Replace(img.Tag, w.reg.Host, w.proxy.Host, 1)
		img.Ref = strings.Replace(img.Ref, w.reg.Host, w.proxy.Host, 1)
		return img
	}
	add("flaky/k1", "plain", via(k1), w.fault, fault(allowed))
	add("flaky/unsigned", "plain", via(unsigned), w.fault, fault(refused))
}

// policies writes the initial state of every timeline, the namespaces and
// the policies that do not change.
func (w *world) policies(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for _, ns := range []string{"plain", "tenant"} {
		if err := w.cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	r := w.reg.Host
	for _, err := range []error{
		w.applyCIP(ctx, "rotation", w.rotationSpec("key1")),
		w.applyCIP(ctx, "base", &v1alpha1.ImagePolicySpec{Images: glob(r + "/base/**"), Authorities: w.keys("key1")}),
		w.applyCIP(ctx, "flaky", &v1alpha1.ImagePolicySpec{Images: glob(w.proxy.Host + "/flaky/**"), OnError: "deny", Authorities: w.keys("key1")}),
		w.applyTrustRoot(ctx, w.trustRootSpec(t, "A-inline")),
		w.applyCIP(ctx, "keyless", &v1alpha1.ImagePolicySpec{Images: glob(r + "/keyless/**"), Authorities: []v1alpha1.Authority{{
			Name: "release", Keyless: &v1alpha1.KeylessAuthority{
				Identities:   []v1alpha1.Identity{{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: `https://github\.com/signet-dev/.+`}},
				TrustRootRef: "soak-root",
			}}}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func glob(g string) []v1alpha1.ImageMatcher { return []v1alpha1.ImageMatcher{{Glob: g}} }

// keys are key authorities for "key1", "key2" or "key1+key2".
func (w *world) keys(state string) []v1alpha1.Authority {
	var out []v1alpha1.Authority
	for _, k := range []struct{ name, pub string }{{"key1", w.pub1}, {"key2", w.pub2}} {
		if strings.Contains(state, k.name) {
			out = append(out, v1alpha1.Authority{Name: k.name, InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: k.pub}})
		}
	}
	return out
}

func (w *world) rotationSpec(state string) *v1alpha1.ImagePolicySpec {
	return &v1alpha1.ImagePolicySpec{Images: glob(w.reg.Host + "/rot/**"), Authorities: w.keys(state)}
}

// churnSpec is the ClusterImagePolicy churn in a state; nil: absent.
func (w *world) churnSpec(state string) *v1alpha1.ImagePolicySpec {
	spec := &v1alpha1.ImagePolicySpec{Images: glob(w.reg.Host + "/churn/**"), Authorities: w.keys("key1")}
	switch state {
	case "absent":
		return nil
	case "warn":
		spec.Mode = "warn"
	case "enforce-key2":
		spec.Authorities = w.keys("key2")
	}
	return spec
}

// tenantSpec is the ImagePolicy tenant/extra in a state; nil: absent.
func (w *world) tenantSpec(state string) *v1alpha1.ImagePolicySpec {
	if state == "absent" {
		return nil
	}
	return &v1alpha1.ImagePolicySpec{Images: glob(w.reg.Host + "/base/**"), Authorities: w.keys(state)}
}

// trustRootSpec is the TrustRoot soak-root in a state: A-inline,
// B-inline, A-keys, B-keys (a Sigstore's trusted root as a file's content,
// or as keys); nil: absent.
func (w *world) trustRootSpec(t testing.TB, state string) *v1alpha1.TrustRootSpec {
	if state == "absent" {
		return nil
	}
	s := w.sigA
	if strings.HasPrefix(state, "B") {
		s = w.sigB
	}
	if strings.HasSuffix(state, "inline") {
		return &v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(s.TrustedRootJSON())}}
	}
	return &v1alpha1.TrustRootSpec{Keys: keysSpec(t, s)}
}

// keysSpec gives a Sigstore's material as a TrustRoot's keys (as
// test/e2e does).
func keysSpec(t testing.TB, s *sigstoretest.Sigstore) *v1alpha1.TrustRootKeys {
	tr := s.TrustedRoot()
	k := &v1alpha1.TrustRootKeys{CertificateAuthorities: []v1alpha1.CertificateAuthorityKey{{URI: sigstoretest.FulcioURL, CertChain: pemOf(s.Chain()...)}}}
	for _, l := range tr.RekorLogs() {
		k.TransparencyLogs = append(k.TransparencyLogs, v1alpha1.LogPublicKey{BaseURL: l.BaseURL, PublicKey: pemPublicKey(t, l.PublicKey)})
	}
	for _, l := range tr.CTLogs() {
		k.CTLogs = append(k.CTLogs, v1alpha1.LogPublicKey{BaseURL: l.BaseURL, PublicKey: pemPublicKey(t, l.PublicKey)})
	}
	for _, a := range tr.TimestampingAuthorities() {
		tsa := a.(*root.SigstoreTimestampingAuthority)
		chain := append(append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...), tsa.Root)
		k.TimestampAuthorities = append(k.TimestampAuthorities, v1alpha1.CertificateAuthorityKey{URI: tsa.URI, CertChain: pemOf(chain...)})
	}
	return k
}

func pemOf(certs ...*x509.Certificate) string {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(out)
}

func pemPublicKey(t testing.TB, k any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (w *world) applyCIP(ctx context.Context, name string, spec *v1alpha1.ImagePolicySpec) error {
	return w.apply(ctx, func() client.Object { return &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}} }, spec == nil,
		func(o client.Object) { o.(*v1alpha1.ClusterImagePolicy).Spec = *spec })
}

func (w *world) applyIP(ctx context.Context, ns, name string, spec *v1alpha1.ImagePolicySpec) error {
	return w.apply(ctx, func() client.Object {
		return &v1alpha1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}, spec == nil, func(o client.Object) { o.(*v1alpha1.ImagePolicy).Spec = *spec })
}

func (w *world) applyTrustRoot(ctx context.Context, spec *v1alpha1.TrustRootSpec) error {
	return w.apply(ctx, func() client.Object { return &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: "soak-root"}} }, spec == nil,
		func(o client.Object) { o.(*v1alpha1.TrustRoot).Spec = *spec })
}

// apply deletes the object (del) or creates or updates it with set.
func (w *world) apply(ctx context.Context, fresh func() client.Object, del bool, set func(client.Object)) error {
	if del {
		return client.IgnoreNotFound(w.cluster.Client.Delete(ctx, fresh()))
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := fresh()
		err := w.cluster.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			obj = fresh()
			set(obj)
			return w.cluster.Client.Create(ctx, obj)
		}
		if err != nil {
			return err
		}
		set(obj)
		return w.cluster.Client.Update(ctx, obj)
	})
}

// admit sends a server-side dry run create of a Pod or Deployment running
// s's image (by tag or digest) through the API server and its webhooks, and
// records the answer against the oracle.
func (w *world) admit(s *subject, kind string, byDigest, probe bool) outcome {
	image := s.tag
	if byDigest {
		image = s.ref
	}
	n := fmt.Sprintf("soak-%d", w.names.Add(1))
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
	var obj client.Object = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: n}, Spec: spec}
	if kind == "Deployment" {
		labels := map[string]string{"app": n}
		obj = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: n}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		}}
	}
	// Not the test's context: an admission in flight when the load stops
	// is answered, not cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	err := w.client.Create(ctx, obj, client.DryRunAll)
	t1 := time.Now()
	got, msg := classify(err)
	w.tally.record(s, kind, image, probe, got, msg, t0, t1, w.start)
	return got
}

// classify reads the API server's answer: signet's denials come back as
// "admission webhook ... denied the request" with the code signet gave.
func classify(err error) (outcome, string) {
	if err == nil {
		return allowed, ""
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return failed, err.Error()
	}
	status := st.Status()
	denied := strings.Contains(status.Message, "denied the request")
	switch {
	case denied && status.Code == http.StatusForbidden:
		return refused, status.Message
	case denied && status.Code == http.StatusServiceUnavailable:
		return undecided, status.Message
	}
	return failed, fmt.Sprintf("%d %s", status.Code, status.Message)
}

// probe admits s (a Pod, by tag) until the answer is in want, for at most
// limit; it returns how long after since that answer came. Its answers are
// recorded against the oracle when record is set.
func (w *world) probe(s *subject, want outcome, since time.Time, limit time.Duration, record bool) (time.Duration, bool) {
	for {
		var got outcome
		if record {
			got = w.admit(s, "Pod", false, true)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			got, _ = classify(w.client.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "probe"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: s.tag}}}}, client.DryRunAll))
			cancel()
		}
		took := time.Since(since)
		if got&want != 0 {
			return took, true
		}
		if took > limit {
			return took, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failf records a churner's failure; the test goroutine reports it.
func (w *world) failf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, fmt.Sprintf(format, args...))
}

// pushRandom pushes a random image to repo:tag, from any goroutine.
func (w *world) pushRandom(repo, tag string) (registrytest.Image, error) {
	img, err := random.Image(256, 2)
	if err != nil {
		return registrytest.Image{}, err
	}
	ref, err := name.NewTag(w.reg.Repo(repo)+":"+tag, name.Insecure)
	if err != nil {
		return registrytest.Image{}, err
	}
	if err := remote.Write(ref, img); err != nil {
		return registrytest.Image{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return registrytest.Image{}, err
	}
	return registrytest.Image{Tag: ref.String(), Digest: d.String(), Ref: w.reg.Repo(repo) + "@" + d.String()}, nil
}

// sign signs image with key as harness.Cosign.Sign does, from any
// goroutine.
func (w *world) sign(ctx context.Context, image string, key harness.KeyPair, bundle bool) error {
	_, err := w.cosign.Run(ctx, "sign", "--key", key.Private, "--yes", "--tlog-upload=false", "--use-signing-config=false",
		fmt.Sprintf("--new-bundle-format=%t", bundle), "--allow-http-registry", "--allow-insecure-registry", image)
	return err
}
