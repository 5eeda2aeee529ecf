package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/webhook"
)

// TestServeWithTheShippedRBAC runs signet serve as the service account
// deploy/manifests makes, with exactly the RBAC they grant: admission,
// policy status and the audit's reads and reports all work, and nothing is
// forbidden.
func TestServeWithTheShippedRBAC(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds"), repoPath(t, "test/e2e/testdata/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	ctx := t.Context()
	c := cluster.Client
	key := cosign.GenerateKeyPair(t)
	signed := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, signed.Ref, key, harness.Legacy)
	unsigned := reg.PushRandomImage(t, "prod/app", "unsigned")
	// An image signed with a certificate of the company CA, whose bundle a
	// ConfigMap in another namespace holds (as trust-manager distributes
	// one).
	pkiRoot := pkitest.NewRoot(t, "Corp Root CA")
	pkiCA := pkiRoot.Intermediate(t, "Corp Code Signing CA")
	corp := reg.PushRandomImage(t, "corp/app", "v1")
	{
		pubKey, err := os.ReadFile(key.Public)
		if err != nil {
			t.Fatal(err)
		}
		k, err := verify.ParsePublicKeyPEM(pubKey)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		leaf, chain := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "chain.pem")
		if err := os.WriteFile(leaf, []byte(pkitest.PEM(pkiCA.Issue(t, k.Key, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}}))), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(chain, []byte(pkitest.PEM(pkiCA.Cert, pkiRoot.Cert)), 0o600); err != nil {
			t.Fatal(err)
		}
		cosign.Sign(t, corp.Ref, key, harness.Bundle, "--certificate", leaf, "--certificate-chain", chain)
	}

	for _, file := range []string{"deploy/manifests/00-namespace.yaml", "deploy/manifests/10-rbac.yaml"} {
		applyManifests(t, cluster, repoPath(t, file))
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, pod("team", "before", unsigned.Tag)) // runs before signet
	mustCreate(t, c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "corp-ca"},
		Data: map[string]string{"ca.crt": pkiRoot.PEM(), "intermediates.crt": pkiCA.PEM()}})
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "corp-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/corp/**"}},
		Authorities: []v1alpha1.Authority{{Name: "corp-ca", InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{
			ConfigMapRef: &v1alpha1.SecretReference{Name: "corp-ca", Namespace: "team"},
			Identities:   []v1alpha1.CertificateIdentity{{Email: "release@example.com"}},
		}}},
	}})

	// A kubeconfig that is the signet service account.
	cfg, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "system:serviceaccount:signet-system:signet"
		a.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:signet-system", "system:authenticated"}
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}

	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "prod-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/prod/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}})
	// The later --kubeconfig replaces webhook.Start's administrator one.
	wh := webhook.Start(t, cluster, "--allow-http-registry", "--audit-interval", "3s", "--kubeconfig", kubeconfig)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})

	t.Run("admission", func(t *testing.T) {
		eventually(t, "the policy in force", func() error {
			err := c.Create(ctx, pod("team", "unsigned", unsigned.Tag))
			if err == nil || !strings.Contains(err.Error(), "no signature found") {
				return fmt.Errorf("got %w", err)
			}
			return nil
		})
		if err := c.Create(ctx, pod("team", "signed", signed.Tag)); err != nil {
			t.Fatalf("a signed Pod: %v", err)
		}
		// The company CA's bundle read from the ConfigMap.
		if err := c.Create(ctx, pod("team", "corp", corp.Tag)); err != nil {
			t.Fatalf("a Pod signed with the company CA's certificate: %v", err)
		}
	})
	t.Run("policy status", func(t *testing.T) {
		eventually(t, "Ready", func() error {
			for _, name := range []string{"prod-signed", "corp-signed"} {
				var p v1alpha1.ClusterImagePolicy
				if err := c.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
					return err
				}
				if len(p.Status.Conditions) == 0 || p.Status.Conditions[0].Status != metav1.ConditionTrue {
					return fmt.Errorf("%s status %+v", name, p.Status)
				}
			}
			return nil
		})
	})
	t.Run("the audit reads and reports", func(t *testing.T) {
		waitReport(t, c, "team",
			wantResult("Pod", "before", "spec.containers[0].image", "fail", "no signature found"),
			wantResult("Pod", "signed", "spec.containers[0].image", "pass"))
	})
	t.Run("nothing is forbidden", func(t *testing.T) {
		for _, line := range strings.Split(wh.Logs(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("signet was refused something its RBAC should grant: %s", line)
			}
		}
	})
}

// applyManifests creates the objects of a multi-document YAML file as the
// cluster administrator.
func applyManifests(t *testing.T, cluster *harness.Cluster, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := cluster.Client.Create(t.Context(), u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: creating %s %s: %v", path, u.GetKind(), u.GetName(), err)
		}
	}
}
