package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/harness"
)

// sharedCacheReplicas: registry requests of 3 replicas of signet serve
// sharing verified results (--shared-cache, Debian's redis-server) after a
// rollout, each admitting once a Pod of the rollout's images (pinned by
// digest, as the mutating webhook pins the Deployment's template), one
// replica after the other, against one replica admitting it. Without the
// shared cache, 3 replicas make 3 times the requests (logged).
func (w *world) sharedCacheReplicas(tb testing.TB) Entry {
	imgs := w.signedImagesAs(tb, "rollout", 4, harness.Bundle)
	proxy := startCountingProxy(tb, w.reg.Host)
	var images []string
	for _, im := range imgs {
		// repo:tag@digest, as admission pins a tag.
		images = append(images, proxy.Host+strings.TrimPrefix(im.Tag, w.reg.Host)+"@"+im.Digest)
	}
	dir := w.policyDir(tb, 1, proxy.Host+"/**")
	srv := harness.StartRedis(tb)
	files := tb.TempDir()
	keyFile, passwordFile := filepath.Join(files, "key"), filepath.Join(files, "password")
	if err := os.WriteFile(keyFile, []byte("the bench's shared cache key, 32 bytes or more"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(passwordFile, []byte(srv.Password), 0o600); err != nil {
		tb.Fatal(err)
	}
	shared := []string{"--shared-cache", srv.URL(), "--shared-cache-key-file", keyFile, "--shared-cache-password-file", passwordFile}
	body := podReview("rollout", "default", images...)
	rollout := func(replicas int, flags ...string) int64 {
		servers := make([]*server, replicas)
		for i := range servers {
			servers[i] = startSignet(tb, dir, flags...)
		}
		before := proxy.n.Load()
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			r, err := s.post(ctx, body)
			cancel()
			if err != nil || !r.Allowed {
				tb.Fatalf("a replica's admission of the rollout's Pod: %v %+v", err, r)
			}
		}
		return proxy.n.Load() - before
	}
	one := rollout(1)
	separate := rollout(3)
	together := rollout(3, shared...)
	tb.Logf("registry requests after a rollout of %d images: 1 replica %d, 3 replicas %d, 3 replicas sharing results %d", len(images), one, separate, together)
	e := newEntry("registry requests, 3 replicas after a rollout with the shared cache", "requests", float64(together), float64(one), "1 replica", 1)
	e.Meets = together <= one
	return e
}
