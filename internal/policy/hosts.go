package policy

// KnownHost reports whether host (a registry host with its port, if any, as
// in a request URL) is named literally by a policy of the snapshot: in an
// image pattern, or as the repository of a source.oci. Docker Hub, named
// docker.io in patterns, is also known by the hosts its API is served from.
// A host only a wildcard pattern selects is not known. Metrics label
// registries by this, so the set of labels is bounded by what policy
// authors wrote, not by the images admitted.
func (s *Snapshot) KnownHost(host string) bool {
	return s.hosts[host]
}

// literalHosts lists the hosts the policies name literally.
func literalHosts(policies []*Policy, ix *index) map[string]bool {
	hosts := make(map[string]bool, len(ix.hosts))
	for h := range ix.hosts {
		hosts[h] = true
	}
	for _, p := range policies {
		for _, src := range p.Sources {
			if src != nil {
				hosts[src.Host] = true
			}
		}
	}
	if hosts["docker.io"] {
		hosts["index.docker.io"] = true
		hosts["registry-1.docker.io"] = true
	}
	return hosts
}
