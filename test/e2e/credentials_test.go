package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/webhook"
)

// TestAdmissionCredentialSources: seed 001's four credential sources
// against the real API server and two registries with different
// credentials. A pod whose own pull secret is wrong for both registries
// (the seed's documented failure) is admitted: registry one is read with
// the matching policy's spec.pullSecrets (a Secret in another namespace),
// registry two with the fallback service account's
// (--fallback-service-account). An image no other source has credentials
// for is "could not decide", and the reason names the source tried, never
// its contents.
func TestAdmissionCredentialSources(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	one := harness.StartRegistry(t, harness.WithBasicAuth("one", "pw-one"))
	two := harness.StartRegistry(t, harness.WithBasicAuth("two", "pw-two"))
	cosign := harness.NewCosign(t)
	for _, l := range [][3]string{{one.Host, "one", "pw-one"}, {two.Host, "two", "pw-two"}} {
		if _, err := cosign.Run(t.Context(), "login", l[0], "-u", l[1], "-p", l[2]); err != nil {
			t.Fatal(err)
		}
	}
	key := cosign.GenerateKeyPair(t)
	push := func(reg *registrytest.Registry, repo, user, password string) string {
		rnd, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		img := reg.PushImage(t, repo, "v1", rnd, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
		cosign.Sign(t, img.Ref, key, harness.Legacy)
		return img.Tag
	}
	appOne := push(one, "app/a", "one", "pw-one")
	otherOne := push(one, "other/a", "one", "pw-one")
	appTwo := push(two, "app/b", "two", "pw-two")
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	dockercfg := func(auths map[string]string) map[string][]byte {
		var entries []string
		for host, up := range auths {
			entries = append(entries, fmt.Sprintf("%q:{\"auth\":%q}", host, base64.StdEncoding.EncodeToString([]byte(up))))
		}
		return map[string][]byte{".dockerconfigjson": []byte(`{"auths":{` + strings.Join(entries, ",") + `}}`)}
	}
	for _, ns := range []string{"ops", "creds", "signet-system"} {
		if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*corev1.Secret{
		// The policy's, in a namespace of its own: registry one only.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "one-reader"}, Type: corev1.SecretTypeDockerConfigJson, Data: dockercfg(map[string]string{one.Host: "one:pw-one"})},
		// The fallback service account's: registry two only.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "two-reader"}, Type: corev1.SecretTypeDockerConfigJson, Data: dockercfg(map[string]string{two.Host: "two:pw-two"})},
		// The pod's: wrong for both.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "wrong"}, Type: corev1.SecretTypeDockerConfigJson, Data: dockercfg(map[string]string{one.Host: "one:not-the-password", two.Host: "two:not-the-password"})},
	} {
		if err := cluster.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "image-policy-registry-credentials"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "two-reader"}}}); err != nil {
		t.Fatal(err)
	}
	authority := []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}}
	for _, p := range []*v1alpha1.ClusterImagePolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "one-app"}, Spec: v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: one.Host + "/app/**"}}, Authorities: authority,
			PullSecrets: []v1alpha1.PullSecretReference{{Name: "one-reader", Namespace: "ops"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "one-other"}, Spec: v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: one.Host + "/other/**"}}, Authorities: authority}},
		{ObjectMeta: metav1.ObjectMeta{Name: "two"}, Spec: v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: two.Host + "/**"}}, Authorities: authority}},
	} {
		if err := cluster.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	webhook.Start(t, cluster, "--allow-http-registry", "--decision-timeout", "10s", "--fallback-service-account", "image-policy-registry-credentials")

	admitted := pod("creds", "admitted", appOne, appTwo)
	admitted.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "wrong"}}
	eventually(t, "admitted through the policy's and the fallback's credentials", func() error {
		return cluster.Client.Create(ctx, admitted)
	})

	undecided := pod("creds", "undecided", otherOne)
	undecided.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "wrong"}}
	err = cluster.Client.Create(ctx, undecided)
	if err == nil || !strings.Contains(err.Error(), "could not decide") ||
		!strings.Contains(err.Error(), "credentials tried for "+one.Host+": pull secret creds/wrong of the object") {
		t.Fatalf("got %v, want could not decide, naming the pod's pull secret as tried", err)
	}
	if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte("one:not-the-password"))) {
		t.Fatalf("the reason tells a credential: %v", err)
	}
}
