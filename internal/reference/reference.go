package reference

import "fmt"

// defaultTag is what the runtime pulls when a reference has neither tag nor
// digest.
const defaultTag = "latest"

// Reference is a parsed, normalized image reference: an immutable value,
// safe to copy and share. == also compares Original; compare String() to ask
// whether two references are the same. The zero Reference is not valid: its
// accessors return "" (Identifier "latest"). Obtain one from [Parse].
type Reference struct {
	registry   string
	repository string
	tag        string
	digest     string
	original   string
}

// Registry returns the normalized registry host with its port, if any, in
// lower case: "docker.io", "registry.example.org", "localhost:5000",
// "[::1]:5000".
func (r Reference) Registry() string { return r.registry }

// Repository returns the repository path within the registry, such as
// "library/nginx".
func (r Reference) Repository() string { return r.repository }

// Name returns registry + "/" + repository, such as "docker.io/library/nginx":
// the normalized repository that policies match against.
func (r Reference) Name() string {
	if r.repository == "" {
		return ""
	}
	return r.registry + "/" + r.repository
}

// Tag returns the tag as written, or "" when there is none. No default is
// filled in; see [Reference.Identifier]. When the reference also has a
// digest, the tag does not select the image.
func (r Reference) Tag() string { return r.tag }

// Digest returns the digest, "sha256:<hex>" or "sha512:<hex>", or "" when
// there is none. When set, it is the image, whatever the tag says.
func (r Reference) Digest() string { return r.digest }

// Identifier returns what the runtime asks the registry for: the digest if
// there is one, else the tag, else "latest".
func (r Reference) Identifier() string {
	switch {
	case r.digest != "":
		return r.digest
	case r.tag != "":
		return r.tag
	default:
		return defaultTag
	}
}

// String returns the canonical form, name[:tag][@digest], such as
// "docker.io/library/nginx:1.27@sha256:...". Parse accepts it and returns the
// same reference.
func (r Reference) String() string {
	s := r.Name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// Original returns the string that was parsed, exactly as written.
func (r Reference) Original() string { return r.original }

// WithDigest returns the reference pinned to digest d, keeping the tag for
// display ("registry.example.org/app:1.0@sha256:..."). Original is unchanged.
// It returns an [*InvalidError] when d is not a valid digest, and when the
// reference is already pinned to a different digest: that would be another
// image, not the same one pinned.
func (r Reference) WithDigest(d string) (Reference, error) {
	pinned := r
	pinned.digest = d
	invalid := func(reason string) (Reference, error) {
		return Reference{}, &InvalidError{Input: pinned.String(), Reason: reason}
	}
	switch {
	case r.repository == "":
		return invalid("missing repository name")
	case r.digest != "" && r.digest != d:
		return invalid(fmt.Sprintf("already pinned to %s", r.digest))
	}
	if reason := checkDigest(d); reason != "" {
		return invalid(reason)
	}
	return pinned, nil
}
