package check

import (
	"context"
	"time"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
)

// What a Decider shares between decisions besides its Cache: parsed
// references, and tag resolutions within the ResolutionWindow or in flight.

// maxParsed bounds the memo of parsed references; past it, it starts over.
const maxParsed = 4096

// parse is reference.Parse, remembered: parsing is a pure function of the
// string and costs more than the rest of a warm decision (the runtime's
// grammar is a regular expression).
func (dc *Decider) parse(image string) (reference.Reference, error) {
	dc.parsedMu.RLock()
	ref, ok := dc.parsed[image]
	dc.parsedMu.RUnlock()
	if ok {
		return ref, nil
	}
	ref, err := reference.Parse(image)
	if err != nil {
		return ref, err
	}
	dc.parsedMu.Lock()
	if dc.parsed == nil || len(dc.parsed) >= maxParsed {
		dc.parsed = make(map[string]reference.Reference)
	}
	dc.parsed[image] = ref
	dc.parsedMu.Unlock()
	return ref, nil
}

// DefaultResolutionWindow is the default Decider.ResolutionWindow.
const DefaultResolutionWindow = 2 * time.Second

// maxResolutions bounds the shared tag resolutions; past it they are dropped
// (each costs one more request).
const maxResolutions = 4096

type resolution struct {
	manifest registry.Manifest
	at       time.Time
}

// resolveShared resolves ref for one decision: a resolution completed
// within the window, or in flight, is shared; failures are not kept.
func (dc *Decider) resolveShared(ctx context.Context, rc *registry.Client, key string, ref reference.Reference, r reach) (registry.Manifest, error) {
	window := dc.ResolutionWindow
	if window == 0 {
		window = DefaultResolutionWindow
	}
	if window > 0 {
		dc.resolvedMu.Lock()
		r, ok := dc.resolved[key]
		dc.resolvedMu.Unlock()
		if ok && time.Since(r.at) < window {
			return r.manifest, nil
		}
	}
	if r == cachedOnly {
		return registry.Manifest{}, errNotCached
	}
	v, err := dc.group.Do(ctx, "resolve\x00"+key, func() (any, error) {
		m, err := resolve(ctx, rc, ref)
		if err != nil || window <= 0 {
			return m, err
		}
		dc.resolvedMu.Lock()
		defer dc.resolvedMu.Unlock()
		now := time.Now()
		if dc.resolved == nil || len(dc.resolved) >= maxResolutions {
			for k, r := range dc.resolved {
				if now.Sub(r.at) >= window {
					delete(dc.resolved, k)
				}
			}
			if dc.resolved == nil || len(dc.resolved) >= maxResolutions {
				dc.resolved = map[string]resolution{}
			}
		}
		dc.resolved[key] = resolution{manifest: m, at: now}
		return m, nil
	})
	if err != nil {
		return registry.Manifest{}, waitUndecided(ctx, err, "resolving "+ref.String())
	}
	return v.(registry.Manifest), nil
}
