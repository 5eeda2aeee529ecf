package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/signet-dev/signet/internal/registry"
)

// TestReadPullSecrets: an object's pull secrets, then its service
// account's, one named source each (a missing Secret or one of another
// type skipped, as the kubelet does); the fallback service account's as
// one source, with what keeps it from giving credentials as its Problem.
func TestReadPullSecrets(t *testing.T) {
	pull := func(ns, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"auth":"dTpw"}}}`)}}
	}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}}
	sa := func(ns, name string, secrets ...string) *corev1.ServiceAccount {
		s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		for _, n := range secrets {
			s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
		return s
	}
	c := fake.NewClientBuilder().WithObjects(
		pull("app", "own"), pull("app", "sa-pull"), opaque, sa("app", "builder", "sa-pull", "own", "missing"),
		pull("signet", "fallback-pull"),
		sa("signet", "fallback", "fallback-pull", "missing"), sa("signet", "empty"),
	).Build()

	got, err := ReadPullSecrets(t.Context(), c, "app", []string{"own", "opaque", "missing"}, "builder")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
		if len(s.Secrets) != 1 || s.Fallback {
			t.Errorf("%s: %d secrets, fallback %v", s.Name, len(s.Secrets), s.Fallback)
		}
	}
	if diff := cmp.Diff([]string{"pull secret app/own of the object", "pull secret app/sa-pull of service account builder"}, names); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if _, err := ReadPullSecrets(t.Context(), c, "app", nil, "nobody"); err != nil {
		t.Errorf("a missing service account: %v", err)
	}

	for _, tc := range []struct {
		account, problem string
		secrets          int
	}{
		{"fallback", "Secret missing is missing or not a pull secret", 1},
		{"empty", "has no imagePullSecrets", 0},
		{"nobody", "not found", 0},
	} {
		src, err := ReadFallbackPullSecrets(t.Context(), c, c, "signet", tc.account)
		if err != nil {
			t.Fatal(err)
		}
		want := registry.CredentialSource{Name: "fallback service account signet/" + tc.account, Fallback: true, Problem: tc.problem}
		if src.Name != want.Name || !src.Fallback || src.Problem != want.Problem || len(src.Secrets) != tc.secrets {
			t.Errorf("%s: got %q fallback %v problem %q with %d secrets, want %+v with %d", tc.account, src.Name, src.Fallback, src.Problem, len(src.Secrets), want, tc.secrets)
		}
	}
}
