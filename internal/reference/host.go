package reference

import (
	"fmt"
	"net/netip"
	"strings"
)

// Docker Hub's registry hosts. The runtime pulls "docker.io" images from
// registry-1.docker.io; registry.hub.docker.com serves the same registry.
const (
	dockerHubPullHost   = "registry-1.docker.io"
	dockerHubLegacyHost = "registry.hub.docker.com"
)

// maxPort is the largest TCP port.
const maxPort = 65535

// CanonicalHost returns the one spelling signet uses for a registry host
// with its optional port: the value [Reference.Registry] has for references
// naming that registry. Patterns, pull-secret keys and every other place
// that names a registry host go through it, so that a registry spelled
// differently is still the same registry; see the package documentation for
// what is canonicalized and what is refused. It returns an [*InvalidError]
// (matching [ErrInvalid]) naming the host and the reason.
func CanonicalHost(host string) (string, error) {
	canonical, reason := canonicalHost(host)
	if reason != "" {
		return "", &InvalidError{Input: host, Reason: reason}
	}
	return canonical, nil
}

// canonicalHost returns the canonical spelling of host[:port], or the
// reason it is refused.
func canonicalHost(host string) (string, string) {
	if host == "" {
		return "", "empty registry host"
	}
	if reason := checkText(host); reason != "" {
		return "", reason
	}
	if !strings.HasPrefix(host, "[") && (strings.HasSuffix(host, ".") || strings.Contains(host, ".:")) {
		return "", fmt.Sprintf("registry host %q ends with a dot, which the runtime's grammar does not accept", host)
	}
	if reason := checkHost(host); reason != "" {
		return "", reason
	}
	hostname, port, hasPort := splitPort(host)
	if hasPort {
		var reason string
		if port, reason = canonicalPort(port); reason != "" {
			return "", reason
		}
	}
	if strings.HasPrefix(hostname, "[") {
		ip, reason := canonicalIPv6(hostname[1 : len(hostname)-1])
		if reason != "" {
			return "", reason
		}
		hostname = ip
	} else {
		hostname = strings.ToLower(hostname)
		if reason := checkNumericHost(hostname); reason != "" {
			return "", reason
		}
		switch hostname {
		case legacyDockerHubHost, dockerHubPullHost, dockerHubLegacyHost:
			if !hasPort {
				hostname = dockerHubHost
			}
		}
	}
	if hasPort {
		return hostname + ":" + port, ""
	}
	return hostname, ""
}

// splitPort splits host[:port] after checkHost accepted it.
func splitPort(host string) (hostname, port string, hasPort bool) {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.LastIndexByte(host, ']') > i {
		return host, "", false
	}
	return host[:i], host[i+1:], true
}

// canonicalPort returns port without leading zeros (every dialer the
// runtimes use reads "05000" as 5000), or why it is refused: 0 and values
// over 65535 reach no server, and the default ports 80 and 443 are refused
// because whether "host:443" is the server "host" names depends on the
// scheme the node uses for that registry (http is the default for
// localhost and for registries configured as insecure), and the runtimes
// configure and authenticate "host:443" and "host" as different hosts.
func canonicalPort(port string) (string, string) {
	if !isDigits(port) {
		return "", fmt.Sprintf("invalid registry port %q", port)
	}
	trimmed := strings.TrimLeft(port, "0")
	n := 0
	for i := 0; i < len(trimmed); i++ {
		n = n*10 + int(trimmed[i]-'0')
		if n > maxPort {
			break
		}
	}
	switch {
	case n == 0 || n > maxPort:
		return "", fmt.Sprintf("registry port %s is out of range: want 1 to %d", port, maxPort)
	case n == 80 || n == 443:
		return "", fmt.Sprintf("registry port %s is a default port: write the host without it "+
			"(the runtime configures and authenticates host:%d as another registry host than host, "+
			"and over plain HTTP it is another server)", port, n)
	}
	return trimmed, ""
}

// canonicalIPv6 returns the RFC 5952 text of a bracketed IPv6 literal
// (lower case, longest run of zero groups compressed), or the dotted IPv4
// address an IPv4-mapped address (::ffff:a.b.c.d) connects to.
func canonicalIPv6(literal string) (string, string) {
	addr, err := netip.ParseAddr(literal)
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", fmt.Sprintf("registry host [%s] is not an IPv6 address", literal)
	}
	if addr.Is4In6() {
		return addr.Unmap().String(), ""
	}
	return "[" + addr.String() + "]", ""
}

// checkNumericHost refuses the numeric spellings of IPv4 addresses other
// than dotted decimal ("127.1", "0x7f.0.0.1", "017700000001",
// "127.000.0.1"): C resolvers read them as addresses, Go's as names to look
// up, so which server they reach depends on how the runtime was built. As in
// URL parsers, a host is numeric when its last label is a number.
func checkNumericHost(hostname string) string {
	last := hostname[strings.LastIndexByte(hostname, '.')+1:]
	hex, isHex := strings.CutPrefix(last, "0x")
	numeric := isDigits(last) || (isHex && (hex == "" || strings.Trim(hex, "0123456789abcdef") == ""))
	if !numeric {
		return ""
	}
	if addr, err := netip.ParseAddr(hostname); err == nil && addr.Is4() && addr.String() == hostname {
		return ""
	}
	return fmt.Sprintf("registry host %q is a numeric address not written as four decimal numbers "+
		"without leading zeros (a.b.c.d); resolvers disagree about which address it is", hostname)
}

// CanonicalHostPattern is [CanonicalHost] for a host holding "*" wildcards,
// as policy patterns may ("*.example.org", "registry-*.example.org:5000"):
// the wildcards are kept, the rest is spelled canonically (lower case, the
// port without leading zeros) so that the pattern is compared with the
// canonical hosts of references; what CanonicalHost refuses (a trailing dot,
// an empty, out-of-range or default port) is refused. A host without
// wildcards is given to CanonicalHost.
func CanonicalHostPattern(host string) (string, error) {
	if !strings.Contains(host, "*") {
		return CanonicalHost(host)
	}
	canonical, reason := canonicalHostPattern(host)
	if reason != "" {
		return "", &InvalidError{Input: host, Reason: reason}
	}
	return canonical, nil
}

func canonicalHostPattern(host string) (string, string) {
	if reason := checkText(host); reason != "" {
		return "", reason
	}
	if strings.HasPrefix(host, "[") {
		return "", fmt.Sprintf("registry host %q: an IPv6 address cannot hold wildcards", host)
	}
	hostname, port, hasPort := strings.Cut(host, ":")
	if strings.HasSuffix(hostname, ".") {
		return "", fmt.Sprintf("registry host %q ends with a dot, which the runtime's grammar does not accept", host)
	}
	for label := range strings.SplitSeq(hostname, ".") {
		if !isDomainLabel(strings.ReplaceAll(label, "*", "a")) {
			return "", fmt.Sprintf("invalid registry host %q", host)
		}
	}
	hostname = strings.ToLower(hostname)
	if !hasPort {
		return hostname, ""
	}
	if strings.Trim(port, "0123456789*") != "" || port == "" {
		return "", fmt.Sprintf("invalid registry port %q", port)
	}
	if !strings.Contains(port, "*") {
		var reason string
		if port, reason = canonicalPort(port); reason != "" {
			return "", reason
		}
	}
	return hostname + ":" + port, ""
}
