package policy

import (
	"strconv"
	"sync/atomic"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// ForEveryImage is a ClusterImagePolicy named name that governs every image
// and verifies it with v, as `signet verify` builds one from its flags:
// sources are the signature repositories v's authorities name; allPlatforms
// also requires every platform manifest of an index to pass. It neither
// pins nor requires digests.
func ForEveryImage(name string, v *verify.Compiled, allPlatforms bool, sources ...*registry.Repository) *Policy {
	set := settings{mode: ModeEnforce, onError: ActionDeny, digest: DigestNone, platforms: PlatformsIndex, signedIdentity: verify.SignedIdentityOff}
	if allPlatforms {
		set.platforms = PlatformsAll
	}
	spec := v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "**"}}, Digest: string(set.digest), Platforms: string(set.platforms)}
	pats, err := compilePatterns("**", true)
	if err != nil {
		panic("policy: the pattern ** does not compile: " + err.Error())
	}
	// The hash keys this policy's results in caches and single-flight: v
	// cannot be hashed by content, so each policy made here gets a number
	// of its own (a cache never mistakes one for another).
	return &Policy{
		Object:   Object{Kind: KindClusterImagePolicy, Name: name, Spec: spec},
		patterns: pats,
		settings: set,
		Verifier: v,
		Sources:  sources,
		Hash:     "adhoc:" + strconv.FormatUint(adhocPolicies.Add(1), 10) + ":" + name,
	}
}

// adhocPolicies numbers the policies ForEveryImage made.
var adhocPolicies atomic.Uint64
