package policy

import (
	"errors"

	"github.com/signet-dev/signet/internal/reference"
)

// patternHost returns a pattern's registry host spelled as references spell
// theirs (reference.CanonicalHostPattern: lower case, ports without leading
// zeros, IPv6 in RFC 5952 form, Docker Hub's hosts as docker.io), so that a
// pattern selects a registry however the pattern and the image spell it. A
// host that references may not have (a default port, a trailing dot, a
// numeric host not in dotted decimal) is refused: no image could match it.
func patternHost(host string) (string, error) {
	canonical, err := reference.CanonicalHostPattern(host)
	if invalid := (*reference.InvalidError)(nil); errors.As(err, &invalid) {
		// The reason names the host; the caller names the field and pattern.
		return "", errors.New(invalid.Reason)
	}
	return canonical, err
}
