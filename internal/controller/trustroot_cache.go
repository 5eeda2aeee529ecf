package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// trustCacheKey is the ConfigMap key holding a remote TrustRoot's exported
// TUF state.
const trustCacheKey = "repository.tar.gz"

// trustCacheName is the ConfigMap (in signet's namespace) that keeps the
// TUF state of the remote TrustRoot name.
func trustCacheName(name string) string {
	n := "signet-trustroot-" + name
	if len(n) > 253 {
		sum := sha256.Sum256([]byte(name))
		n = "signet-trustroot-" + hex.EncodeToString(sum[:16])
	}
	return n
}

// saveTrustCache writes a remote TrustRoot's exported TUF state to its
// ConfigMap, so that a restart with the mirror down starts from it. The
// content is verified from the TrustRoot's initial root when read back, so
// the ConfigMap needs no more protection than the mirror does.
func (c *Controller) saveTrustCache(ctx context.Context, name string, data []byte) error {
	key := client.ObjectKey{Namespace: c.Namespace, Name: trustCacheName(name)}
	var cm corev1.ConfigMap
	err := c.client.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "signet"},
			Annotations: map[string]string{"signet.dev/trustroot": name}},
			BinaryData: map[string][]byte{trustCacheKey: data}}
		return c.client.Create(ctx, &cm)
	case err != nil:
		return err
	}
	if string(cm.BinaryData[trustCacheKey]) == string(data) {
		return nil
	}
	cm.BinaryData = map[string][]byte{trustCacheKey: data}
	return c.client.Update(ctx, &cm)
}

// trustCacheReader reads a remote TrustRoot's saved TUF state.
func trustCacheReader(c client.Client, ns string) func(ctx context.Context, name string) ([]byte, error) {
	return func(ctx context.Context, name string) ([]byte, error) {
		var cm corev1.ConfigMap
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trustCacheName(name)}, &cm)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return cm.BinaryData[trustCacheKey], nil
	}
}

// SavedRemote returns the remote TrustRoot tr as the TUF repository signet
// serve's leader last saved for it (the ConfigMap signet-trustroot-NAME in
// namespace), with that ConfigMap's resourceVersion. It is for readers that
// do not fetch TUF mirrors themselves (the node agent). Resolving the
// returned spec verifies it from tr's initial root like any refresh: a
// tampered, foreign or expired state is refused.
func SavedRemote(ctx context.Context, c client.Reader, namespace string, tr *v1alpha1.TrustRoot) (v1alpha1.TrustRootSpec, string, error) {
	r := tr.Spec.Remote
	if r == nil {
		return v1alpha1.TrustRootSpec{}, "", fmt.Errorf("TrustRoot %s is not remote", tr.Name)
	}
	var cm corev1.ConfigMap
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: trustCacheName(tr.Name)}, &cm)
	if err == nil && len(cm.BinaryData[trustCacheKey]) == 0 {
		err = fmt.Errorf("it has no %s", trustCacheKey)
	}
	if err != nil {
		return v1alpha1.TrustRootSpec{}, "", fmt.Errorf("TrustRoot %s is remote and read from what signet serve saved of it (the ConfigMap %s/%s), which is not there yet: %w",
			tr.Name, namespace, trustCacheName(tr.Name), err)
	}
	return v1alpha1.TrustRootSpec{Repository: &v1alpha1.TUFRepository{
		MirrorFS: cm.BinaryData[trustCacheKey], Root: r.Root, TrustedRootTarget: r.TrustedRootTarget,
	}}, cm.ResourceVersion, nil
}
