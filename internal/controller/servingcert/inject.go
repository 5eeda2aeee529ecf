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
	if validating != "" {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := cl.Get(ctx, client.ObjectKey{Name: validating}, &vwc); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", validating, err)
		}
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if err := cl.Update(ctx, &vwc); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", validating, err)
		}
	}
	if mutating != "" {
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := cl.Get(ctx, client.ObjectKey{Name: mutating}, &mwc); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mutating, err)
		}
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if err := cl.Update(ctx, &mwc); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mutating, err)
		}
	}
	return nil
}

// mergeCABundles makes every webhook of the named configurations trust the
// CAs of want, keeping the unexpired CA certificates each already trusts:
// a replica that read the Secret before another rotated it must not take
// the new CA out of the configurations while that replica serves its
// certificate. Nothing else removes a CA; expired ones drop out. A
// configuration is written only when a bundle changes.
func mergeCABundles(ctx context.Context, cl client.Client, validating, mutating string, want []byte, now time.Time) error {
	// Replicas starting together write the same configurations: on a
	// conflict, read again and merge again.
	if validating != "" {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if err := cl.Get(ctx, client.ObjectKey{Name: validating}, &vwc); err != nil {
				return err
			}
			changed := false
			for i := range vwc.Webhooks {
				cc := &vwc.Webhooks[i].ClientConfig
				if b := mergeBundle(cc.CABundle, want, now); !bytes.Equal(b, cc.CABundle) {
					cc.CABundle, changed = b, true
				}
			}
			if !changed {
				return nil
			}
			return cl.Update(ctx, &vwc)
		})
		if err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", validating, err)
		}
	}
	if mutating != "" {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var mwc admissionregistrationv1.MutatingWebhookConfiguration
			if err := cl.Get(ctx, client.ObjectKey{Name: mutating}, &mwc); err != nil {
				return err
			}
			changed := false
			for i := range mwc.Webhooks {
				cc := &mwc.Webhooks[i].ClientConfig
				if b := mergeBundle(cc.CABundle, want, now); !bytes.Equal(b, cc.CABundle) {
					cc.CABundle, changed = b, true
				}
			}
			if !changed {
				return nil
			}
			return cl.Update(ctx, &mwc)
		})
		if err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mutating, err)
		}
	}
	return nil
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
