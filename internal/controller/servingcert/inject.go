package servingcert

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
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
