package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Kind says how a piece of evidence was stored.
type Kind int

const (
	// LegacySignature is a layer of cosign's sha256-<hex>.sig manifest: a
	// simple-signing payload with the signature and its certificate, chain,
	// Rekor bundle and timestamp in annotations.
	LegacySignature Kind = iota + 1
	// LegacyAttestation is a layer of cosign's sha256-<hex>.att manifest: a DSSE
	// envelope with the same annotations.
	LegacyAttestation
	// SigstoreBundle is a Sigstore bundle attached as an OCI 1.1 referrer (found
	// through the referrers API or the referrers tag schema).
	SigstoreBundle
	// NotarySignature is a Notary Project signature envelope (JWS or COSE)
	// attached as a referrer with the artifact type
	// application/vnd.cncf.notary.signature; MediaType says which envelope.
	NotarySignature
)

func (k Kind) String() string {
	switch k {
	case LegacySignature:
		return "legacy signature"
	case LegacyAttestation:
		return "legacy attestation"
	case SigstoreBundle:
		return "sigstore bundle"
	case NotarySignature:
		return "notary signature"
	}
	return "unknown"
}

// BundleMediaTypePrefix starts the media type of every Sigstore bundle version.
const BundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"

// The Notary Project's signature artifact type and envelope media types.
const (
	NotaryArtifactType  = "application/vnd.cncf.notary.signature"
	MediaTypeNotaryJWS  = "application/jose+json"
	MediaTypeNotaryCOSE = "application/cose"
)

// Evidence is one candidate signature or attestation as stored, unverified.
type Evidence struct {
	Kind Kind
	// Repository holds the manifest the evidence was found in.
	Repository Repository
	// Manifest is the digest of that manifest; Layer the layer's index in it.
	Manifest string
	Layer    int
	// MediaType is the layer's media type; Content its bytes (digest-checked).
	MediaType string
	Content   []byte
	// Annotations are the layer's annotations (legacy formats keep the
	// signature, certificate and log entry there). Unsigned: never trust them
	// for anything the signature does not cover.
	Annotations map[string]string
}

// Source says where the evidence was found, for messages.
func (e Evidence) Source() string {
	return fmt.Sprintf("%s %s@%s layer %d", e.Kind, e.Repository, e.Manifest, e.Layer)
}

// EvidenceOptions say where to look.
type EvidenceOptions struct {
	// SignatureRepository, when set, holds the signatures and attestations
	// instead of the image's own repository (like cosign's COSIGN_REPOSITORY).
	SignatureRepository *Repository
	// SkipAttestations does not read the legacy .att tag (when no policy
	// asks for attestations). Bundles among the referrers are read either
	// way: signatures are stored there too.
	SkipAttestations bool
	// Enough, when set, is asked with everything found so far whenever one
	// lookup (.sig, .att, referrers) finds evidence while others still run.
	// When it answers true, the others are cancelled and Evidence returns
	// what was found: their requests could not change a passing outcome.
	// Calls are serialized; the slice must not be kept.
	Enough func([]Evidence) bool
}

// Evidence fetches every candidate signature and attestation of the image
// with the given digest in repo: the legacy .sig and .att tags and the
// Sigstore bundles among its referrers. An image with no evidence yields an
// empty list and no error; a registry failure or an exceeded limit is an error.
//
// The lookups run in parallel. With opts.Enough, Evidence stops as soon as
// the evidence found is enough, and remembers repositories whose images
// pass on legacy evidence alone: for those, the legacy tags are read first
// and the referrers only when that is not enough (one request less per
// image where it is, one round trip more where the repository changed).
func (c *Client) Evidence(ctx context.Context, repo Repository, digest string, opts EvidenceOptions) ([]Evidence, error) {
	if err := checkDigestSyntax(digest); err != nil {
		return nil, err
	}
	where := repo
	if opts.SignatureRepository != nil {
		where = *opts.SignatureRepository
	}
	tag := strings.Replace(digest, ":", "-", 1)
	legacy := []lookup{func(ctx context.Context) ([]Evidence, error) {
		return c.legacy(ctx, where, tag+".sig", LegacySignature, cosignPayloadOf(repo, digest))
	}}
	if !opts.SkipAttestations {
		legacy = append(legacy, func(ctx context.Context) ([]Evidence, error) {
			return c.legacy(ctx, where, tag+".att", LegacyAttestation, nil)
		})
	}
	bundles := func(ctx context.Context) ([]Evidence, error) { return c.bundles(ctx, where, digest) }

	if opts.Enough != nil && c.legacyFirst(where) {
		found, enough, err := runLookups(ctx, opts.Enough, legacy...)
		if err != nil {
			return nil, err
		}
		if enough || len(found) > 0 && opts.Enough(slices.Clip(found)) {
			return found, nil
		}
		c.setLegacyFirst(where, false)
		more, err := bundles(ctx)
		if err != nil {
			return nil, err
		}
		return append(found, more...), nil
	}

	found, enough, err := runLookups(ctx, opts.Enough, append(legacy, bundles)...)
	if err != nil {
		return nil, err
	}
	if opts.Enough != nil {
		onlyLegacy := !slices.ContainsFunc(found, func(e Evidence) bool { return e.Kind == SigstoreBundle || e.Kind == NotarySignature })
		if !enough && onlyLegacy && len(found) > 0 {
			// Every lookup ended before the question could save one: ask
			// now, to learn where legacy evidence suffices.
			enough = opts.Enough(slices.Clip(found))
		}
		c.setLegacyFirst(where, enough && onlyLegacy)
	}
	return found, nil
}

// lookup is one way of finding evidence (.sig, .att, referrers).
type lookup func(context.Context) ([]Evidence, error)

// runLookups runs the lookups in parallel. Whenever one finds evidence
// while others still run, enough (if set) is asked about everything found
// so far; a true answer cancels the others. It returns everything found and
// whether enough said so; once it has, the cancelled lookups' errors are
// not errors.
func runLookups(ctx context.Context, enough func([]Evidence) bool, fns ...lookup) ([]Evidence, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var (
		mu      sync.Mutex
		found   []Evidence
		running = len(fns) // counted before any starts, so none ends unseen
		stopped bool
	)
	for _, f := range fns {
		g.Go(func() error {
			ev, err := f(gctx)
			mu.Lock()
			defer mu.Unlock()
			running--
			switch {
			case stopped:
				return nil
			case err != nil:
				return err
			}
			found = append(found, ev...)
			if len(ev) > 0 && running > 0 && enough != nil && enough(slices.Clip(found)) {
				stopped = true
				cancel()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	return found, stopped, nil
}

// legacy reads the layers of cosign's signature or attestation tag; known,
// if set, gives the bytes of some layers without a fetch.
func (c *Client) legacy(ctx context.Context, repo Repository, tag string, kind Kind, known knownContent) ([]Evidence, error) {
	m, err := c.Resolve(ctx, repo, tag)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s:%s: %w", repo, tag, err)
	}
	var im ImageManifest
	if err := json.Unmarshal(m.Bytes, &im); err != nil {
		return nil, withKind(ErrMalformed, fmt.Errorf("reading %s:%s: not an image manifest: %w", repo, tag, err))
	}
	if n := len(im.Layers); n > c.opts.limits.MaxLayers {
		return nil, fmt.Errorf("reading %s:%s: %w: %d layers, at most %d are read", repo, tag, ErrLimit, n, c.opts.limits.MaxLayers)
	}
	which := make([]int, len(im.Layers))
	for i := range which {
		which[i] = i
	}
	return c.layers(ctx, repo, m.Digest, im.Layers, which, kind, known)
}

// knownContent returns the bytes of a layer without fetching them, or nil.
// Whatever it returns must match the layer's digest.
type knownContent func(Descriptor) []byte

// cosignPayloadOf knows the simple-signing payload cosign signs for the
// image digest in repo when no annotations were added (-a): it is fixed by
// the repository's name and the digest. The layer's digest decides: bytes
// that hash to it are the bytes the registry would send, so a match saves
// the signature's blob request, the only request after the .sig manifest,
// and a mismatch (annotations, another signer, another name) just fetches.
func cosignPayloadOf(repo Repository, digest string) knownContent {
	names := []string{repo.String()}
	if repo.Host == "index.docker.io" {
		names = append(names, "docker.io/"+repo.Path) // cosign writes index.docker.io; others may not
	}
	var payloads [][]byte
	for _, name := range names {
		if jsonPlain(name) {
			payloads = append(payloads, []byte(`{"critical":{"identity":{"docker-reference":"`+name+`"},"image":{"docker-manifest-digest":"`+digest+
				`"},"type":"cosign container image signature"},"optional":null}`))
		}
	}
	return func(l Descriptor) []byte {
		for _, p := range payloads {
			if int64(len(p)) == l.Size && checkDigest(l.Digest, p) == nil {
				return p
			}
		}
		return nil
	}
}

// jsonPlain reports whether s needs no escaping in a JSON string (as
// encoding/json writes it, which also escapes <, > and &).
func jsonPlain(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e || strings.ContainsRune(`"\<>&`, r) {
			return false
		}
	}
	return true
}

// bundles reads the Sigstore bundles among the referrers of digest.
func (c *Client) bundles(ctx context.Context, repo Repository, digest string) ([]Evidence, error) {
	refs, err := c.Referrers(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	var out []Evidence
	for _, d := range refs {
		notary := d.ArtifactType == NotaryArtifactType
		if !notary && !mayHoldBundle(d) {
			continue
		}
		m, err := c.Resolve(ctx, repo, d.Digest)
		if errors.Is(err, ErrNotFound) {
			// Listed but deleted since (the index lags, or the tag schema
			// was not updated): no evidence from it, as if never listed.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s@%s: %w", repo, d.Digest, err)
		}
		var im ImageManifest
		if err := json.Unmarshal(m.Bytes, &im); err != nil || m.IsIndex() {
			continue // not an artifact manifest: not a bundle
		}
		if im.Subject == nil || im.Subject.Digest != digest {
			// The registry listed it, but the manifest does not refer to this image.
			continue
		}
		kind := SigstoreBundle
		var which []int
		for i, l := range im.Layers {
			switch {
			case notary && (l.MediaType == MediaTypeNotaryJWS || l.MediaType == MediaTypeNotaryCOSE):
				kind = NotarySignature
				which = append(which, i)
			case !notary && strings.HasPrefix(l.MediaType, BundleMediaTypePrefix):
				which = append(which, i)
			}
		}
		if len(which) > c.opts.limits.MaxLayers {
			return nil, fmt.Errorf("reading referrer %s@%s: %w: %d signature layers, at most %d are read", repo, d.Digest, ErrLimit, len(which), c.opts.limits.MaxLayers)
		}
		ev, err := c.layers(ctx, repo, m.Digest, im.Layers, which, kind, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ev...)
	}
	return out, nil
}

// Referrers lists the manifests whose subject is digest, through the OCI
// referrers API or, where the registry has none, the referrers tag schema
// (an index tagged sha256-<hex>).
func (c *Client) Referrers(ctx context.Context, repo Repository, digest string) ([]Descriptor, error) {
	if err := checkDigestSyntax(digest); err != nil {
		return nil, err
	}
	if c.lacksReferrersAPI(repo.Host) {
		return c.referrersFallback(ctx, repo, digest)
	}
	// The first requests to a host wait for the first one's answer to
	// whether it has the API, rather than each asking.
	if done, wait := c.probeReferrersAPI(repo.Host); wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.lacksReferrersAPI(repo.Host) {
			return c.referrersFallback(ctx, repo, digest)
		}
	} else if done != nil {
		defer done()
	}
	body, _, err := c.get(ctx, repo, "referrers/"+digest, []string{MediaTypeOCIIndex}, c.opts.limits.MaxManifestBytes)
	var se *StatusError
	// No referrers API: registries answer 404, some 400 or 405.
	if errors.Is(err, ErrNotFound) || (errors.As(err, &se) && (se.StatusCode == 400 || se.StatusCode == 405)) {
		c.markNoReferrersAPI(repo.Host)
		return c.referrersFallback(ctx, repo, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", repo, digest, err)
	}
	c.markReferrersAPI(repo.Host)
	return c.referrerIndex(repo, digest, body)
}

// referrersFallback reads the referrers tag schema: an index tagged sha256-<hex>.
func (c *Client) referrersFallback(ctx context.Context, repo Repository, digest string) ([]Descriptor, error) {
	m, err := c.Resolve(ctx, repo, strings.Replace(digest, ":", "-", 1))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s (tag schema): %w", repo, digest, err)
	}
	return c.referrerIndex(repo, digest, m.Bytes)
}

func (c *Client) referrerIndex(repo Repository, digest string, body []byte) ([]Descriptor, error) {
	var idx Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, withKind(ErrMalformed, fmt.Errorf("listing referrers of %s@%s: not an index: %w", repo, digest, err))
	}
	if n := len(idx.Manifests); n > c.opts.limits.MaxReferrers {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w: %d referrers, at most %d are read", repo, digest, ErrLimit, n, c.opts.limits.MaxReferrers)
	}
	return idx.Manifests, nil
}

// layers fetches the layers of one manifest at the given indices, a few at a
// time, but for those whose bytes known has. Evidence.Layer is the index in
// the manifest.
func (c *Client) layers(ctx context.Context, repo Repository, manifest string, all []Descriptor, which []int, kind Kind, known knownContent) ([]Evidence, error) {
	// Every size is checked before any fetch starts: returning from the loop
	// below would leave fetches running.
	for _, i := range which {
		if all[i].Size > c.opts.limits.MaxBlobBytes {
			return nil, fmt.Errorf("reading %s@%s layer %d: %w: %d bytes, at most %d are read", repo, manifest, i, ErrLimit, all[i].Size, c.opts.limits.MaxBlobBytes)
		}
	}
	out := make([]Evidence, len(which))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for j, i := range which {
		l := all[i]
		out[j] = Evidence{
			Kind: kind, Repository: repo, Manifest: manifest, Layer: i,
			MediaType: l.MediaType, Annotations: l.Annotations,
		}
		if known != nil {
			if out[j].Content = known(l); out[j].Content != nil {
				continue
			}
		}
		g.Go(func() error {
			content, err := c.Blob(gctx, repo, l.Digest)
			if err != nil {
				return fmt.Errorf("reading %s@%s layer %d: %w", repo, manifest, i, err)
			}
			out[j].Content = content
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func checkDigestSyntax(digest string) error {
	alg, hex, ok := strings.Cut(digest, ":")
	want := map[string]int{"sha256": 64, "sha512": 128}[alg]
	if !ok || want == 0 || len(hex) != want || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("malformed digest %q", digest)
	}
	return nil
}

// mediaTypeEmpty is the config media type of artifacts without a config; some
// registries report it as the artifactType of referrers that set none.
const mediaTypeEmpty = "application/vnd.oci.empty.v1+json"

// mayHoldBundle filters referrers on the client side: a Sigstore bundle
// artifact says so in its artifactType, or (as cosign writes it) leaves the
// artifactType to the empty config and carries bundle annotations. The layers
// are filtered by media type again after the manifest is read.
func mayHoldBundle(d Descriptor) bool {
	switch {
	case strings.HasPrefix(d.ArtifactType, BundleMediaTypePrefix), d.ArtifactType == "":
		return true
	case d.ArtifactType == mediaTypeEmpty:
		_, ok := d.Annotations["dev.sigstore.bundle.content"]
		return ok || len(d.Annotations) == 0
	}
	return false
}
