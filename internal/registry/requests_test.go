package registry_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// The /v2/ ping of a registry is sent once for all its repositories, also
// when they are first read at the same time; a 401 from the registry makes
// the next new repository ping again.
func TestPingOncePerRegistry(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	c := newTLSClient(t, h.Server)
	pings := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.hits["/v2/"]
	}
	resolve := func(path string) error {
		_, err := c.Resolve(t.Context(), registry.Repository{Host: h.Repo.Host, Path: path}, "latest")
		return err
	}

	var wg sync.WaitGroup
	for _, path := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		wg.Go(func() {
			if err := resolve(path); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Resolve %s: %v, want ErrNotFound", path, err)
			}
		})
	}
	wg.Wait()
	if n := pings(); n != 1 {
		t.Fatalf("8 repositories read at once: %d pings, want 1", n)
	}
	if err := resolve("i"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal(err)
	}
	if n := pings(); n != 1 {
		t.Fatalf("one more repository: %d pings in all, want 1", n)
	}

	h.route("manifests/latest", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	if err := resolve(h.Repo.Path); err == nil {
		t.Fatal("Resolve answered 401: no error")
	}
	if err := resolve("j"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal(err)
	}
	if n := pings(); n != 2 {
		// The 401's repository used the kept answer; j pinged again.
		t.Fatalf("after a 401: %d pings in all, want 2", n)
	}
}

// A ping answer other than 200 or 401 is not kept.
func TestPingFailureNotKept(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	var mu sync.Mutex
	failing := true
	h.route("/v2/", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	c := newTLSClient(t, h.Server)
	if _, err := c.Resolve(t.Context(), h.Repo, "latest"); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Resolve with a 403 ping: %v, want a connection error", err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if _, err := c.Resolve(t.Context(), registry.Repository{Host: h.Repo.Host, Path: "other"}, "latest"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Resolve after the registry recovered: %v, want ErrNotFound", err)
	}
}

// A repository read for the first time follows the last image of its
// registry: where legacy evidence was enough there, its .sig is read first
// and its referrers not at all when the .sig is enough.
func TestEvidenceLegacyFirstAcrossRepositories(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	sigBlob := []byte(`{"critical":{}}`)
	sig := serveJSON(registry.MediaTypeOCIManifest, manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest,
		Layers: []registry.Descriptor{{MediaType: simpleSigningType, Digest: sha256Digest(sigBlob), Size: int64(len(sigBlob))}}}))
	repos := []registry.Repository{h.Repo, {Host: h.Repo.Host, Path: "other"}, {Host: h.Repo.Host, Path: "third"}}
	h.mu.Lock()
	for _, r := range repos {
		h.routes["/v2/"+r.Path+"/manifests/"+tagOf(hostileImage, ".sig")] = sig
		h.routes["/v2/"+r.Path+"/blobs/"+sha256Digest(sigBlob)] = serveJSON("application/octet-stream", sigBlob)
	}
	h.mu.Unlock()
	referrerRequests := func(r registry.Repository) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.hits["/v2/"+r.Path+"/referrers/"+hostileImage] + h.hits["/v2/"+r.Path+"/manifests/"+tagOf(hostileImage, "")]
	}
	// The last repository's .sig waits (up to 2 s) for its referrers to be
	// asked: they are when both are read at once, and are not when the .sig
	// is read first and is enough.
	h.mu.Lock()
	h.routes["/v2/"+repos[2].Path+"/manifests/"+tagOf(hostileImage, ".sig")] = func(w http.ResponseWriter, r *http.Request) {
		for start := time.Now(); referrerRequests(repos[2]) == 0 && time.Since(start) < 2*time.Second; {
			time.Sleep(time.Millisecond)
		}
		sig(w, r)
	}
	h.mu.Unlock()
	c := newTLSClient(t, h.Server)
	evidence := func(r registry.Repository, enough bool) {
		t.Helper()
		ev, err := c.Evidence(t.Context(), r, hostileImage, registry.EvidenceOptions{
			SkipAttestations: true,
			Enough:           func([]registry.Evidence) bool { return enough },
		})
		if err != nil || len(ev) != 1 {
			t.Fatalf("Evidence of %s: %d pieces, %v; want the .sig", r, len(ev), err)
		}
	}
	evidence(repos[0], true) // read both ways; the .sig was enough
	evidence(repos[1], true)
	if n := referrerRequests(repos[1]); n != 0 {
		t.Errorf("a new repository where the registry's last .sig was enough: %d referrer requests, want 0", n)
	}
	evidence(repos[1], false) // not enough: the registry's next new repository is read both ways
	evidence(repos[2], true)
	if n := referrerRequests(repos[2]); n == 0 {
		t.Errorf("a new repository after a .sig that was not enough: its referrers were not read")
	}
}

// Behind a token server, the kept ping saves only the ping: every
// repository still gets its own token (its own pull scope), one even when
// its first requests run at once.
func TestPingOncePerRegistryWithTokens(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + registry.MediaTypeOCIManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + sha256Digest([]byte("{}")) + `","size":2},"layers":[]}`)
	paths := []string{"a", "b", "c"}
	h.mu.Lock()
	for _, p := range paths {
		h.routes["/v2/"+p+"/manifests/v1"] = serveJSON(registry.MediaTypeOCIManifest, manifest)
	}
	h.mu.Unlock()
	requireAuth(h, "Bearer")
	kc := &registrytest.HostKeychain{Host: h.Repo.Host, Auth: &authn.Basic{Username: user, Password: password}}
	c := newTLSClient(t, h.Server, registry.WithKeychain(kc))

	var wg sync.WaitGroup
	for _, p := range append(paths, paths...) { // each repository twice at once
		wg.Go(func() {
			if _, err := c.Resolve(t.Context(), registry.Repository{Host: h.Repo.Host, Path: p}, "v1"); err != nil {
				t.Errorf("Resolve %s: %v", p, err)
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.hits["/v2/"]; n != 1 {
		t.Errorf("%d pings, want 1", n)
	}
	if n := h.hits["/token"]; n != len(paths) {
		t.Errorf("%d token requests, want %d (one per repository)", n, len(paths))
	}
}

// A caller that joined a ping or a transport another caller was making is
// not failed by that caller's cancellation: it makes its own.
func TestSharedConnectOfACancelledCaller(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	var calls atomic.Int32
	started := make(chan struct{})
	h.route("/v2/", func(_ http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(started)
			<-r.Context().Done() // held until its caller gives up
		}
	})
	c := newTLSClient(t, h.Server)
	resolve := func(ctx context.Context, path string, out chan<- error) {
		_, err := c.Resolve(ctx, registry.Repository{Host: h.Repo.Host, Path: path}, "latest")
		out <- err
	}
	ctxA, cancelA := context.WithCancel(t.Context())
	errA, errSame, errOther := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go resolve(ctxA, "app", errA)
	<-started
	go resolve(t.Context(), "app", errSame)    // joins A's transport
	go resolve(t.Context(), "other", errOther) // joins A's ping
	time.Sleep(100 * time.Millisecond)
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled caller: %v, want context.Canceled", err)
	}
	for name, ch := range map[string]chan error{"same repository": errSame, "other repository": errOther} {
		if err := <-ch; !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound (the registry answered)", name, err)
		}
	}
}
