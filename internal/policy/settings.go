package policy

// A policy's settings (mode, onError, digest, platforms, signedIdentity)
// and the cluster's unmatched setting, as typed values. The API objects
// hold them as strings, validated by the CRD; CompileObject parses each
// once, and code compares the constants below, never string literals.
// Each value is the API's spelling, so it prints, marshals to JSON and is
// given as a flag exactly as a policy writes it.

import (
	"fmt"
	"strings"

	"github.com/signet-dev/signet/internal/verify"
)

// Mode is what failing a policy does to an image.
type Mode string

const (
	// ModeEnforce denies the image (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn admits it with a warning.
	ModeWarn Mode = "warn"
)

// Action is what happens to an image signet does not pass: a policy's
// onError applies it when signet could not decide, Config.Unmatched to an
// image no ClusterImagePolicy selects.
type Action string

const (
	// ActionDeny denies the image (the default).
	ActionDeny Action = "deny"
	// ActionWarn admits it with a warning.
	ActionWarn Action = "warn"
	// ActionAllow admits it without one.
	ActionAllow Action = "allow"
)

// ParseAction returns the action s names; "" is ActionDeny. Any other
// spelling is an error listing the actions.
func ParseAction(s string) (Action, error) {
	return parseEnum(s, ActionDeny, ActionWarn, ActionAllow)
}

// DigestRule is what a policy does with image references by tag.
type DigestRule string

const (
	// DigestPin rewrites them to the verified digest (the default).
	DigestPin DigestRule = "pin"
	// DigestRequire denies references without a digest.
	DigestRequire DigestRule = "require"
	// DigestNone leaves references as they are.
	DigestNone DigestRule = "none"
)

// Platforms is what a policy verifies of an image index.
type Platforms string

const (
	// PlatformsIndex verifies the referenced digest only (the default).
	PlatformsIndex Platforms = "index"
	// PlatformsAll also verifies every platform manifest of an index.
	PlatformsAll Platforms = "all"
)

// settings are a policy's parsed settings, defaults applied.
type settings struct {
	mode           Mode
	onError        Action
	digest         DigestRule
	platforms      Platforms
	signedIdentity verify.SignedIdentity
}

// settings parses the spec's settings; a spelling it does not know is a
// field error (the policy is invalid) and leaves that setting's default.
func (c *compiler) settings(mode, onError, digest, platforms, signedIdentity string) settings {
	var (
		s   settings
		err error
	)
	if s.mode, err = parseEnum(mode, ModeEnforce, ModeWarn); err != nil {
		c.fail("spec.mode", "%v", err)
	}
	if s.onError, err = ParseAction(onError); err != nil {
		c.fail("spec.onError", "%v", err)
	}
	if s.signedIdentity, err = parseSignedIdentity(signedIdentity); err != nil {
		c.fail("spec.signedIdentity", "%v", err)
	}
	if s.platforms, err = parseEnum(platforms, PlatformsIndex, PlatformsAll); err != nil {
		c.fail("spec.platforms", "%v", err)
	}
	if s.digest, err = parseEnum(digest, DigestPin, DigestRequire, DigestNone); err != nil {
		c.fail("spec.digest", "%v", err)
	}
	return s
}

// signedIdentities are the spellings of verify.SignedIdentity, in the
// order messages list them.
var signedIdentities = []struct {
	name string
	id   verify.SignedIdentity
}{
	{"off", verify.SignedIdentityOff},
	{"matchRepository", verify.MatchRepository},
	{"matchExact", verify.MatchExact},
	{"matchRepoDigestOrExact", verify.MatchRepoDigestOrExact},
}

// parseSignedIdentity returns the identity check s names; "" is off.
func parseSignedIdentity(s string) (verify.SignedIdentity, error) {
	if s == "" {
		return verify.SignedIdentityOff, nil
	}
	names := make([]string, len(signedIdentities))
	for i, si := range signedIdentities {
		if si.name == s {
			return si.id, nil
		}
		names[i] = si.name
	}
	return verify.SignedIdentityOff, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}

// parseEnum returns the value s spells, or values[0], the default, for "".
// Any other spelling is an error listing the values (and values[0]).
func parseEnum[T ~string](s string, values ...T) (T, error) {
	if s == "" {
		return values[0], nil
	}
	names := make([]string, len(values))
	for i, v := range values {
		if string(v) == s {
			return v, nil
		}
		names[i] = string(v)
	}
	return values[0], fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}
