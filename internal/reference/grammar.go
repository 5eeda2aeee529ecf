package reference

import (
	"fmt"
	"strings"
)

// The checks below spell out the runtime's grammar (github.com/distribution/reference
// regexp.go) piece by piece, so that a rejection can say which piece is wrong.
// Each returns "" when its input is valid, or the reason it is not. The
// runtime's own parser still has the last word in Parse.

const (
	// maxTagLength is the grammar's limit: [\w][\w.-]{0,127}.
	maxTagLength = 128
	// maxNameLength is the grammar's 255-character name limit, applied to the
	// normalized registry/repository.
	maxNameLength = 255
)

// checkText rejects characters that can appear nowhere in a reference.
func checkText(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return "contains a non-ASCII character"
		case c == ' ', c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return "contains whitespace"
		case c < 0x20, c == 0x7f:
			return "contains a control character"
		}
	}
	return ""
}

// checkDigest accepts the digests signet can verify: lower-case sha256 and
// sha512 with exactly 64 and 128 hex characters.
func checkDigest(d string) string {
	if d == "" {
		return "empty digest"
	}
	algorithm, encoded, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Sprintf("digest %q has no algorithm", d)
	}
	var want int
	switch algorithm {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Sprintf("unsupported digest algorithm %q, want sha256 or sha512", algorithm)
	}
	for i := 0; i < len(encoded); i++ {
		switch c := encoded[i]; {
		case 'A' <= c && c <= 'F':
			return "digest hex must be lower case"
		case !isDigit(c) && !('a' <= c && c <= 'f'):
			return fmt.Sprintf("digest contains non-hex character %q", c)
		}
	}
	if len(encoded) != want {
		return fmt.Sprintf("%s digest has %d hex characters, want %d", algorithm, len(encoded), want)
	}
	return ""
}

// checkTag follows the grammar's tag: [\w][\w.-]{0,127}.
func checkTag(tag string) string {
	if tag == "" {
		return "empty tag"
	}
	if len(tag) > maxTagLength {
		return fmt.Sprintf("tag has %d characters, over the limit of %d", len(tag), maxTagLength)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !isWord(c) && (i == 0 || (c != '.' && c != '-')) {
			return fmt.Sprintf("invalid tag %q", tag)
		}
	}
	return ""
}

// checkPathComponent follows the grammar's path component: lower-case
// alphanumeric runs joined by one separator each, where a separator is ".",
// "_", "__" or any number of "-".
func checkPathComponent(c string) string {
	i := 0
	for {
		start := i
		for i < len(c) && (isDigit(c[i]) || ('a' <= c[i] && c[i] <= 'z')) {
			i++
		}
		if i == start {
			return fmt.Sprintf("invalid path component %q", c)
		}
		if i == len(c) {
			return ""
		}
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return fmt.Sprintf("invalid path component %q", c)
		}
	}
}

// checkHost follows the grammar's host and optional port: a domain name of
// dot-separated labels (letters, digits, inner hyphens) or a bracketed IPv6
// literal of hex digits and colons, then ":" and digits.
func checkHost(host string) string {
	var port string
	var hasPort bool
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || !isIPv6Literal(host[1:end]) {
			return fmt.Sprintf("invalid registry host %q", host)
		}
		if rest := host[end+1:]; rest != "" {
			port, hasPort = strings.CutPrefix(rest, ":")
			if !hasPort {
				return fmt.Sprintf("invalid registry host %q", host)
			}
		}
	} else {
		var hostname string
		hostname, port, hasPort = strings.Cut(host, ":")
		for label := range strings.SplitSeq(hostname, ".") {
			if !isDomainLabel(label) {
				return fmt.Sprintf("invalid registry host %q", host)
			}
		}
	}
	if hasPort && !isDigits(port) {
		return fmt.Sprintf("invalid registry port %q", port)
	}
	return ""
}

func isIPv6Literal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ':' && !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isDomainLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && !isAlnum(c) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isImageID reports whether s is a bare 64-character hex image ID, which the
// runtime refuses to read as a repository name.
func isImageID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !('a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isHexDigit(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') }
func isAlnum(c byte) bool    { return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isWord(c byte) bool     { return isAlnum(c) || c == '_' }
