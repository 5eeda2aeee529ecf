package reference

import (
	// The runtime's parser accepts a digest only if its hash function is
	// linked into the binary.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strings"

	distref "github.com/distribution/reference"
)

const (
	dockerHubHost       = "docker.io"
	legacyDockerHubHost = "index.docker.io"
	localhost           = "localhost"
	// officialNamespace holds Docker Hub's one-component repositories:
	// "nginx" is "docker.io/library/nginx".
	officialNamespace = "library"

	// maxInputLength is checked before anything else. The longest valid
	// reference is under 550 characters: a 255-character name (up to 6 more
	// as written, for "index."), a 128-character tag and a sha512 digest.
	maxInputLength = 1024
)

// Parse parses s as the container runtime does and normalizes it; see the
// package documentation for the rules. It does no I/O. Errors are
// [*InvalidError] and match [ErrInvalid].
func Parse(s string) (Reference, error) {
	r, reason := parse(s)
	if reason != "" {
		return Reference{}, &InvalidError{Input: s, Reason: reason}
	}
	return r, nil
}

// parse returns the reference, or the reason s is not one.
func parse(s string) (Reference, string) {
	switch {
	case s == "":
		return Reference{}, "empty reference"
	case len(s) > maxInputLength:
		return Reference{}, fmt.Sprintf("longer than %d characters", maxInputLength)
	case isImageID(s):
		return Reference{}, "a 64-character hex string is an image ID, not a reference"
	}
	if reason := checkText(s); reason != "" {
		return Reference{}, reason
	}

	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if strings.Contains(digest, "@") {
			return Reference{}, `more than one "@"`
		}
		if reason := checkDigest(digest); reason != "" {
			return Reference{}, reason
		}
	}
	var tag string
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
		if reason := checkTag(tag); reason != "" {
			return Reference{}, reason
		}
	}
	if name == "" {
		return Reference{}, "missing repository name"
	}

	components := strings.Split(name, "/")
	for _, c := range components {
		switch c {
		case "":
			return Reference{}, "empty path component"
		case ".", "..":
			return Reference{}, fmt.Sprintf("relative path component %q", c)
		}
	}
	host, path := splitHost(components)
	if p := strings.Join(path, "/"); strings.ToLower(p) != p {
		return Reference{}, fmt.Sprintf("repository path %q must be lower case", p)
	}
	for _, c := range path {
		if reason := checkPathComponent(c); reason != "" {
			return Reference{}, reason
		}
	}
	registry, reason := normalizeHost(host)
	if reason != "" {
		return Reference{}, reason
	}
	if registry == dockerHubHost && len(path) == 1 {
		if !addsOfficialNamespace(host) {
			// The runtime asks Docker Hub for the repository "app" itself,
			// not "library/app".
			return Reference{}, fmt.Sprintf("repository %q on %s has no namespace; Docker Hub's official images "+
				"are %s/%s/%s", path[0], strings.ToLower(host), dockerHubHost, officialNamespace, path[0])
		}
		path = []string{officialNamespace, path[0]}
	}

	r := Reference{
		registry:   registry,
		repository: strings.Join(path, "/"),
		tag:        tag,
		digest:     digest,
		original:   s,
	}
	if n := len(r.Name()); n > maxNameLength {
		return Reference{}, fmt.Sprintf("normalized name has %d characters, over the limit of %d", n, maxNameLength)
	}
	if reason := agreeWithRuntime(r); reason != "" {
		return Reference{}, reason
	}
	return r, ""
}

// splitHost splits the components of a name into registry host and
// repository path by the runtime's rule: the first of several components is
// a host if it is "localhost", contains "." or ":", or has upper-case
// letters. Otherwise the host is "" (Docker Hub).
func splitHost(components []string) (host string, path []string) {
	if len(components) == 1 {
		return "", components
	}
	first := components[0]
	if first == localhost || strings.ContainsAny(first, ".:") || strings.ToLower(first) != first {
		return first, components[1:]
	}
	return "", components
}

// normalizeHost returns the canonical host (see canonicalHost), with
// Docker Hub's implicit "" as "docker.io", or the reason it is refused.
// Beyond canonicalHost, it refuses the spellings whose meaning for the
// runtime depends on their letter case.
func normalizeHost(host string) (string, string) {
	if host == "" {
		return dockerHubHost, ""
	}
	canonical, reason := canonicalHost(host)
	if reason != "" {
		return "", reason
	}
	lower := strings.ToLower(host)
	if lower != host {
		// The runtime compares these hosts case-sensitively, so lower-casing
		// them would change which image the reference names.
		switch {
		case lower == dockerHubHost || lower == legacyDockerHubHost:
			return "", fmt.Sprintf("registry host %q must be written in lower case to name Docker Hub", host)
		case lower != localhost && !strings.ContainsAny(lower, ".:"):
			return "", fmt.Sprintf("registry host %q is a host only because of its upper-case letters; "+
				"lower-cased it would be a Docker Hub namespace", host)
		}
	}
	return canonical, ""
}

// addsOfficialNamespace reports whether the runtime reads a one-component
// repository on host (as written) as Docker Hub's "library/<name>".
func addsOfficialNamespace(host string) bool {
	return host == "" || host == dockerHubHost || host == legacyDockerHubHost
}

// agreeWithRuntime gives the runtime's parser the last word: it must accept
// both what was written and the canonical form, and read the same repository
// (up to the spelling of the host, see canonicalHost), tag and digest from
// both.
func agreeWithRuntime(r Reference) string {
	written, err := distref.ParseNormalizedNamed(r.original)
	if err != nil {
		return fmt.Sprintf("rejected by the runtime's grammar: %v", err)
	}
	canonical, err := distref.ParseNormalizedNamed(r.String())
	if err != nil {
		return fmt.Sprintf("normalized form %q is rejected by the runtime's grammar: %v", r.String(), err)
	}
	for _, named := range []distref.Named{written, canonical} {
		var tag, digest string
		if t, ok := named.(distref.Tagged); ok {
			tag = t.Tag()
		}
		if d, ok := named.(distref.Digested); ok {
			digest = d.Digest().String()
		}
		if host, _ := canonicalHost(distref.Domain(named)); host != r.registry || distref.Path(named) != r.repository ||
			tag != r.tag || digest != r.digest {
			return fmt.Sprintf("the runtime reads it as %q, not %q", named.String(), r.String())
		}
	}
	return ""
}
