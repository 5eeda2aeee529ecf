package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// Scheme knows the kinds the controller reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// StartWatches starts ca's informers: a change to any watched object calls
// onChange; cached objects are only kept in the cache. It returns once
// every cache has synced; the informers run until ctx ends.
func StartWatches(ctx context.Context, ca cache.Cache, log *slog.Logger, onChange func(), watched []client.Object, cached ...client.Object) error {
	for _, obj := range append(append([]client.Object(nil), watched...), cached...) {
		inf, err := ca.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if !slices.Contains(watched, obj) {
			continue
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { onChange() },
			UpdateFunc: func(_, _ any) { onChange() },
			DeleteFunc: func(any) { onChange() },
		}); err != nil {
			return err
		}
	}
	go func() {
		if err := ca.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("policy watch stopped", "err", err)
		}
	}()
	if !ca.WaitForCacheSync(ctx) {
		return errors.New("policy caches did not sync")
	}
	return nil
}
