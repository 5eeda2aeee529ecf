package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InjectCABundle writes caPEM into every webhook of the named validating and
// mutating webhook configurations (either may be absent: "" skips it).
func InjectCABundle(ctx context.Context, cfg *rest.Config, validating, mutating string, caPEM []byte) error {
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	return injectCABundle(ctx, cl, validating, mutating, caPEM)
}

func injectCABundle(ctx context.Context, cl client.Client, validating, mutating string, caPEM []byte) error {
	return updateCABundles(ctx, cl, validating, mutating, func([]byte) []byte { return caPEM })
}

// mergeCABundles makes every webhook of the named configurations trust the
// CAs of want, keeping the unexpired CA certificates each already trusts:
// a replica that read the Secret before another rotated it must not take
// the new CA out of the configurations while that replica serves its
// certificate. Nothing else removes a CA; expired ones drop out.
func mergeCABundles(ctx context.Context, cl client.Client, validating, mutating string, want []byte, now time.Time) error {
	return updateCABundles(ctx, cl, validating, mutating, func(have []byte) []byte { return mergeBundle(have, want, now) })
}

// updateCABundles sets the caBundle of every webhook of the named
// validating and mutating configurations (either may be "": skipped) to
// bundle(its current one). A configuration is written only when a bundle
// changes; replicas starting together write the same configurations, so
// on a conflict it is read and updated again.
func updateCABundles(ctx context.Context, cl client.Client, validating, mutating string, bundle func(have []byte) []byte) error {
	for _, obj := range []struct {
		kind, name string
		obj        client.Object
	}{
		{"ValidatingWebhookConfiguration", validating, &admissionregistrationv1.ValidatingWebhookConfiguration{}},
		{"MutatingWebhookConfiguration", mutating, &admissionregistrationv1.MutatingWebhookConfiguration{}},
	} {
		if obj.name == "" {
			continue
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := cl.Get(ctx, client.ObjectKey{Name: obj.name}, obj.obj); err != nil {
				return err
			}
			changed := false
			for _, cc := range clientConfigs(obj.obj) {
				if b := bundle(cc.CABundle); !bytes.Equal(b, cc.CABundle) {
					cc.CABundle, changed = b, true
				}
			}
			if !changed {
				return nil
			}
			return cl.Update(ctx, obj.obj)
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", obj.kind, obj.name, err)
		}
	}
	return nil
}

// clientConfigs are the client configurations of every webhook of a
// validating or mutating webhook configuration.
func clientConfigs(obj client.Object) []*admissionregistrationv1.WebhookClientConfig {
	var out []*admissionregistrationv1.WebhookClientConfig
	switch c := obj.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range c.Webhooks {
			out = append(out, &c.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range c.Webhooks {
			out = append(out, &c.Webhooks[i].ClientConfig)
		}
	}
	return out
}

// mergeBundle is want followed by the CA certificates of have that are not
// in want and not expired at now; anything else in have (a placeholder,
// an expired CA) is dropped.
func mergeBundle(have, want []byte, now time.Time) []byte {
	out := append([]byte{}, want...)
	for rest := have; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.IsCA || now.After(c.NotAfter) {
			continue
		}
		enc := pem.EncodeToMemory(block)
		if bytes.Contains(want, enc) || bytes.Contains(out[len(want):], enc) {
			continue
		}
		out = append(out, enc...)
	}
	return out
}
