// Package check decides images: Decider.Decide is the one decision every
// face of signet asks for (admission, signet verify, signet policy test).
// For each image it finds the policies that govern it (package policy),
// resolves the reference to a digest once, fetches the evidence for that
// digest once for all of them (and, when asked, for every platform of an
// index: Fetch), verifies each policy (package verify: Evaluate), keeps the
// results in a Cache, and combines them into the verdict
// (policy.Snapshot.Combine). A decision does not depend on where it is
// asked for.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// maxPlatforms bounds how many platform manifests of an index are verified.
const maxPlatforms = 64

// Options say where to look for evidence.
type Options struct {
	// SignatureRepository overrides where signatures are stored.
	SignatureRepository *registry.Repository
	// ExtraSources are further repositories to read evidence from (policy
	// authorities with a source), besides SignatureRepository or the
	// image's own.
	ExtraSources []*registry.Repository
	// SourceClients read the evidence of the named source repositories
	// (with that source's credentials) instead of the image's client.
	SourceClients map[registry.Repository]*registry.Client
	// AllPlatforms also fetches the evidence of every platform manifest of
	// an index.
	AllPlatforms bool
	// SkipAttestations does not read legacy attestations (.att), for
	// policies that check none; see registry.EvidenceOptions.
	SkipAttestations bool
	// Satisfied, when set, is asked whether the evidence found so far is
	// enough (every policy at hand passes with it) while other lookups
	// still run; a true answer cancels them. It is asked only for a single
	// evidence source and no platforms, and may be asked more than once.
	// Passing is monotonic in the evidence (more signatures never turn a
	// pass into a denial), so stopping early never changes a decision.
	Satisfied func(*Image) bool
}

// Image is a resolved image with its evidence.
type Image struct {
	Ref      reference.Reference
	Digest   string
	Manifest registry.Manifest
	// Repository is where the image is.
	Repository registry.Repository
	// home is where authorities without a source of their own read
	// evidence: Options.SignatureRepository, or Repository.
	home     registry.Repository
	Evidence []registry.Evidence
	// Platforms are the index's platform manifests with their evidence (only
	// fetched with Options.AllPlatforms).
	Platforms []Platform
}

// Platform is one platform manifest of an index.
type Platform struct {
	Digest   string
	Platform string
	Evidence []registry.Evidence
}

// RepositoryOf is where the registry API finds ref.
func RepositoryOf(ref reference.Reference) registry.Repository {
	host := ref.Registry()
	if host == "docker.io" {
		host = "index.docker.io"
	}
	return registry.Repository{Host: host, Path: ref.Repository()}
}

// Fetch resolves ref once and fetches its evidence. Every error is a
// could-not-decide error (errors.Is(err, verify.ErrUndecided)), of the
// registry's kind when it says one (errors.Is(err, registry.ErrUnauthorized),
// registry.ErrRateLimited, ...).
//
// A reference by digest is not fetched unless its platforms are wanted:
// signatures and attestations name the digest, so the manifest adds
// nothing (Image.Manifest then holds only the digest). An image that does
// not exist has no evidence, and fails its policies for that.
func Fetch(ctx context.Context, rc *registry.Client, ref reference.Reference, opts Options) (*Image, error) {
	if d := ref.Digest(); d != "" && !opts.AllPlatforms {
		return fetchEvidence(ctx, rc, ref, registry.Manifest{Digest: d}, opts)
	}
	m, err := resolve(ctx, rc, ref)
	if err != nil {
		return nil, err
	}
	return fetchEvidence(ctx, rc, ref, m, opts)
}

func resolve(ctx context.Context, rc *registry.Client, ref reference.Reference) (registry.Manifest, error) {
	m, err := rc.Resolve(ctx, RepositoryOf(ref), ref.Identifier())
	if err != nil {
		return m, verify.AsUndecided(fmt.Errorf("resolving %s: %w", ref, err))
	}
	return m, nil
}

// fetchEvidence fetches the evidence of the image m (m.Bytes is needed only
// with opts.AllPlatforms).
func fetchEvidence(ctx context.Context, rc *registry.Client, ref reference.Reference, m registry.Manifest, opts Options) (*Image, error) {
	repo := RepositoryOf(ref)
	img := &Image{Ref: ref, Digest: m.Digest, Manifest: m, Repository: repo, home: repo}
	if opts.SignatureRepository != nil {
		img.home = *opts.SignatureRepository
	}
	type source struct {
		opts registry.EvidenceOptions
		rc   *registry.Client
	}
	sources := []source{{registry.EvidenceOptions{SignatureRepository: opts.SignatureRepository, SkipAttestations: opts.SkipAttestations}, rc}}
	seen := map[registry.Repository]bool{repo: true}
	if opts.SignatureRepository != nil {
		seen[*opts.SignatureRepository] = true
	}
	for _, src := range opts.ExtraSources {
		if src == nil || seen[*src] {
			continue
		}
		seen[*src] = true
		client := rc
		if c := opts.SourceClients[*src]; c != nil {
			client = c
		}
		sources = append(sources, source{registry.EvidenceOptions{SignatureRepository: src, SkipAttestations: opts.SkipAttestations}, client})
	}
	var mu sync.Mutex
	evidence := func(gctx context.Context, digest string, into *[]registry.Evidence) error {
		for _, s := range sources {
			ev, err := s.rc.Evidence(gctx, repo, digest, s.opts)
			if err != nil {
				return fmt.Errorf("fetching signatures of %s@%s: %w", ref.Name(), digest, err)
			}
			mu.Lock()
			*into = append(*into, ev...)
			mu.Unlock()
		}
		return nil
	}

	platforms := opts.AllPlatforms && m.IsIndex()
	if opts.Satisfied != nil && len(sources) == 1 && !platforms {
		sources[0].opts.Enough = func(ev []registry.Evidence) bool {
			found := *img
			found.Evidence = ev
			return opts.Satisfied(&found)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return evidence(gctx, m.Digest, &img.Evidence) })
	if platforms {
		var idx registry.Index
		if err := json.Unmarshal(m.Bytes, &idx); err != nil {
			return nil, &verify.Undecided{Kind: registry.ErrMalformed, Err: fmt.Errorf("index %s@%s: %w", ref.Name(), m.Digest, err)}
		}
		if len(idx.Manifests) > maxPlatforms {
			return nil, &verify.Undecided{Kind: registry.ErrLimit, Err: fmt.Errorf("index %s@%s lists %d manifests, more than the limit of %d", ref.Name(), m.Digest, len(idx.Manifests), maxPlatforms)}
		}
		img.Platforms = make([]Platform, len(idx.Manifests))
		for i, d := range idx.Manifests {
			p := &img.Platforms[i]
			p.Digest = d.Digest
			if d.Platform != nil {
				p.Platform = d.Platform.OS + "/" + d.Platform.Architecture
				if d.Platform.Variant != "" {
					p.Platform += "/" + d.Platform.Variant
				}
			}
			g.Go(func() error { return evidence(gctx, d.Digest, &p.Evidence) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, verify.AsUndecided(err)
	}
	return img, nil
}

// Evaluate verifies a fetched image against one policy. With platforms
// fetched, each platform manifest must pass too; the result is the index's,
// with the first failing platform's reason. ctx bounds the evaluation of
// attestation conditions (see verify.Compiled.Verify).
func Evaluate(ctx context.Context, img *Image, p *verify.Compiled) verify.Result {
	return evaluate(ctx, img, p, true)
}

func evaluate(ctx context.Context, img *Image, p *verify.Compiled, platforms bool) verify.Result {
	res := p.Verify(ctx, verify.Request{Image: img.Ref, Digest: img.Digest, Evidence: img.Evidence, ImageRepository: &img.home})
	if !res.Verified || !platforms {
		return res
	}
	for _, pl := range img.Platforms {
		pres := p.Verify(ctx, verify.Request{Image: img.Ref, Digest: pl.Digest, Evidence: pl.Evidence, ImageRepository: &img.home})
		if !pres.Verified {
			res.Verified = false
			res.Err = fmt.Errorf("platform %s (%s): %w", pl.Platform, pl.Digest, pres.Err)
			return res
		}
	}
	return res
}

// IsUndecided reports whether err means "could not decide".
func IsUndecided(err error) bool { return errors.Is(err, verify.ErrUndecided) }
