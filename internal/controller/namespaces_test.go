package controller

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// failingReader is an API server that cannot be reached.
type failingReader struct{ client.Reader }

func (failingReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New(`Get "https://127.0.0.1:6443/api/v1/namespaces/team/serviceaccounts/default": dial tcp 127.0.0.1:6443: connect: connection refused`)
}

// A service account the cache lacks is asked of the API server (created a
// moment ago); when the API server cannot be asked, the cache's answer
// (none) stands instead of failing the decision; a cached one is used
// without asking.
func TestReadServiceAccount(t *testing.T) {
	ctx := context.Background()
	empty := fake.NewClientBuilder().Build()
	withSA := fake.NewClientBuilder().WithObjects(&corev1.ServiceAccount{
		ObjectMeta:       metav1.ObjectMeta{Namespace: "team", Name: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
	}).Build()

	if sa, err := readServiceAccount(ctx, empty, withSA, "team", "default"); err != nil || sa == nil || sa.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("not cached yet, asked: %v, %v", sa, err)
	}
	if sa, err := readServiceAccount(ctx, empty, failingReader{}, "team", "default"); err != nil || sa != nil {
		t.Errorf("not cached, the API server down: %v, %v; want none and no error", sa, err)
	}
	if sa, err := readServiceAccount(ctx, withSA, failingReader{}, "team", "default"); err != nil || sa == nil {
		t.Errorf("cached, the API server down: %v, %v", sa, err)
	}
	if sa, err := readServiceAccount(ctx, empty, empty, "team", "default"); err != nil || sa != nil {
		t.Errorf("none anywhere: %v, %v", sa, err)
	}
	// A cache that fails (not a NotFound) is still an error.
	if _, err := readServiceAccount(ctx, failingReader{}, empty, "team", "default"); err == nil {
		t.Error("a failing cache read gave no error")
	}
}
