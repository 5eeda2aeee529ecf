package check

import (
	"strings"

	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
)

// credentials are the pull credentials one decision may use: the sources
// in order, their Secret data flattened, and the key naming the set.
type credentials struct {
	sources []registry.CredentialSource
	data    []map[string][]byte
	// owner[i] is the index in sources of data[i].
	owner []int
	// key is credentialsKey(data); "" when there are none.
	key string
}

// newCredentials orders the request's sources and the pull secrets of the
// matched policies: the request's sources that are not Fallback, the
// policies' in their order, then the Fallback ones.
func newCredentials(req []registry.CredentialSource, matched []*policy.Policy) credentials {
	var c credentials
	add := func(s registry.CredentialSource) {
		c.sources = append(c.sources, s)
		for _, d := range s.Secrets {
			c.data = append(c.data, d)
			c.owner = append(c.owner, len(c.sources)-1)
		}
	}
	for _, s := range req {
		if !s.Fallback {
			add(s)
		}
	}
	for _, p := range matched {
		if p.Err == nil {
			for _, s := range p.PullSecrets {
				add(s)
			}
		}
	}
	for _, s := range req {
		if s.Fallback {
			add(s)
		}
	}
	if len(c.data) > 0 {
		c.key = credentialsKey(c.data)
	}
	return c
}

// explain names the source whose Secrets could not be read as
// credentials (err is what reading them all said).
func (c *credentials) explain(err error) error {
	for _, s := range c.sources {
		if _, e := registry.NewSecretKeychain(s.Secrets...); e != nil {
			return &sourceError{source: s.Name, err: e}
		}
	}
	return err
}

// names lists the sources of the credentials data[i] for i in idx, once
// each, in order.
func (c *credentials) names(idx []int) string {
	var out []string
	for _, i := range idx {
		if i < 0 || i >= len(c.owner) {
			continue
		}
		n := c.sources[c.owner[i]].Name
		if len(out) == 0 || out[len(out)-1] != n {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// problems says why sources gave fewer credentials than meant ("" if
// none did).
func (c *credentials) problems() string {
	var out []string
	for _, s := range c.sources {
		if s.Problem != "" {
			out = append(out, s.Name+": "+s.Problem)
		}
	}
	return strings.Join(out, "; ")
}

// sourceError is a credential source that could not be read.
type sourceError struct {
	source string
	err    error
}

func (e *sourceError) Error() string { return e.source + ": " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
