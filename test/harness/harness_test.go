package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/test/registrytest"
)

// The real API server starts, answers discovery and stores a custom resource of
// a CRD installed at start-up and of one created afterwards.
func TestClusterServesCRDs(t *testing.T) {
	t.Parallel()
	crdDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(crdDir, "gadgets.yaml"), []byte(crdYAML("gadgets", "Gadget")), 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := newSchemeWithCRDs(t)
	c := StartCluster(t, WithCRDs(crdDir), WithScheme(scheme))

	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("asking the API server its version: %v", err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.") {
		t.Errorf("server version = %q, want a v1.x kube-apiserver", v.GitVersion)
	}
	if _, err := os.Stat(c.Kubeconfig); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}

	ctx := context.Background()
	// A CRD created at run time becomes established and serves its kind.
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yamlToObject(crdYAML("widgets", "Widget"), crd); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, crd); err != nil {
		t.Fatalf("creating CRD: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
			return false, err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("CRD never became established: %v", err)
	}

	for _, kind := range []string{"Gadget", "Widget"} {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.signet.dev", Version: "v1", Kind: kind})
		obj.SetName("one")
		obj.SetNamespace("default")
		obj.Object["spec"] = map[string]any{"image": "registry.example.org/app:v1"}
		// The dynamic REST mapping may take a moment to see a new CRD.
		var err error
		for i := 0; i < 50; i++ {
			if err = c.Client.Create(ctx, obj); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("creating a %s: %v", kind, err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "one"}, got); err != nil {
			t.Fatalf("reading the %s back: %v", kind, err)
		}
		if img, _, _ := unstructured.NestedString(got.Object, "spec", "image"); img != "registry.example.org/app:v1" {
			t.Errorf("%s spec.image = %q, want it stored as written", kind, img)
		}
	}

	// The schema is enforced: a field of the wrong type is refused.
	bad := &unstructured.Unstructured{}
	bad.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.signet.dev", Version: "v1", Kind: "Widget"})
	bad.SetName("bad")
	bad.SetNamespace("default")
	bad.Object["spec"] = map[string]any{"image": 42}
	if err := c.Client.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "spec.image") {
		t.Errorf("creating a Widget with a numeric image: err = %v, want a validation error naming spec.image", err)
	}
}

// Images pushed to each kind of registry and signed by the real cosign, in
// both formats, are accepted by the real `cosign verify`; an unsigned image
// and a different key are not.
func TestCosignSignsAndVerifiesInEveryRegistry(t *testing.T) {
	t.Parallel()
	registries := []*registrytest.Registry{
		StartRegistry(t),
		registrytest.StartInProcess(t, true),
		registrytest.StartInProcess(t, false),
	}
	cosign := NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	otherKey := cosign.GenerateKeyPair(t)
	ctx := context.Background()

	for _, reg := range registries {
		for _, f := range Formats {
			t.Run(fmt.Sprintf("%s/referrers=%v/%s", reg.Kind, reg.Referrers, f), func(t *testing.T) {
				signed := reg.PushRandomImage(t, "signed-"+f.String(), "v1")
				unsigned := reg.PushRandomImage(t, "unsigned-"+f.String(), "v1")
				cosign.Sign(t, signed.Ref, key, f)

				if out, err := cosign.Verify(ctx, signed.Ref, key, f); err != nil {
					t.Fatalf("cosign verify of a signed image failed: %v", err)
				} else if !strings.Contains(out, signed.Digest) {
					t.Errorf("cosign verify output does not name the digest %s:\n%s", signed.Digest, out)
				}
				if _, err := cosign.Verify(ctx, unsigned.Ref, key, f); err == nil {
					t.Errorf("cosign verify accepted an unsigned image")
				}
				if _, err := cosign.Verify(ctx, signed.Ref, otherKey, f); err == nil {
					t.Errorf("cosign verify accepted a signature with the wrong key")
				}

				const slsa = "https://slsa.dev/provenance/v1"
				cosign.Attest(t, signed.Ref, key, slsa, []byte(`{"buildDefinition":{"buildType":"test"}}`), f)
				if _, err := cosign.VerifyAttestation(ctx, signed.Ref, key, slsa, f); err != nil {
					t.Errorf("cosign verify-attestation failed: %v", err)
				}
			})
		}
	}
}

// A missing tool binary fails the test with instructions; it never skips.
func TestMissingBinaryFailsWithInstructions(t *testing.T) {
	t.Setenv("SIGNET_BIN_DIR", t.TempDir())
	rec := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Binary(rec, "cosign")
	}()
	wg.Wait()
	if !rec.failed || !strings.Contains(rec.msg, "make tools") || !strings.Contains(rec.msg, "cosign") {
		t.Errorf("Binary of a missing tool: failed=%v message %q, want a failure naming the tool and `make tools`", rec.failed, rec.msg)
	}
	if rec.skipped {
		t.Errorf("Binary of a missing tool skipped the test")
	}
}

type fatalRecorder struct {
	testing.TB
	msg             string
	failed, skipped bool
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *fatalRecorder) Skipf(format string, args ...any) {
	r.skipped = true
	runtime.Goexit()
}

func crdYAML(plural, kind string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]s.test.signet.dev
spec:
  group: test.signet.dev
  scope: Namespaced
  names:
    plural: %[1]s
    singular: %[3]s
    kind: %[2]s
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              image:
                type: string
`, plural, kind, strings.ToLower(kind))
}
