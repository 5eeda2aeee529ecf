package policy

import (
	"net/netip"
	"strings"
	"testing"

	distref "github.com/distribution/reference"
	"github.com/signet-dev/signet/internal/reference"
)

// respell returns other spellings of the registry host the runtime reads
// from ref: the same server, written differently.
func respell(host, path string) []string {
	var out []string
	add := func(h string) { out = append(out, h+"/"+path) }
	add(strings.ToUpper(host))
	hostname, port, hasPort := host, "", false
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		hostname, port, hasPort = host[:i], host[i+1:], true
		add(hostname + ":0" + port)
		add(hostname + ":000" + port)
	}
	withPort := func(h string) string {
		if hasPort {
			return h + ":" + port
		}
		return h
	}
	if strings.HasPrefix(hostname, "[") {
		if addr, err := netip.ParseAddr(strings.Trim(hostname, "[]")); err == nil {
			add(withPort("[" + addr.StringExpanded() + "]"))
			add(withPort("[" + strings.ToUpper(addr.StringExpanded()) + "]"))
		}
	} else if addr, err := netip.ParseAddr(hostname); err == nil && addr.Is4() {
		b := addr.As4()
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})
		add(withPort("[" + mapped.StringExpanded() + "]"))
	}
	if host == "docker.io" && strings.Contains(path, "/") {
		for _, h := range []string{"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "Registry-1.Docker.IO"} {
			add(h)
		}
	}
	return out
}

// FuzzHostSpellings: spellings of one registry that the runtime pulls from
// the same server are refused or canonicalized to the same name, and a
// pattern written with any spelling of a host selects exactly the images
// whose canonical host is that host's canonical spelling.
func FuzzHostSpellings(f *testing.F) {
	for _, seed := range [][2]string{
		{"127.0.0.1:5000/app", "127.0.0.1:05000/app"},
		{"[::1]:5000/team/app:v1", "[0:0::1]:05000/team/app"},
		{"[::ffff:7f00:1]:5000/app", "127.0.0.1:5000/app"},
		{"[2001:DB8::1]/app", "[2001:db8:0:0:0:0:0:1]/app"},
		{"Registry.Example.ORG:5000/team/app", "registry.example.org:05000/team/app"},
		{"registry-1.docker.io/library/nginx", "nginx"},
		{"registry.hub.docker.com/bitnami/redis", "index.docker.io/bitnami/redis"},
		{"registry.example.org:443/app", "registry.example.org/app"},
		{"127.1:5000/app", "127.0.0.1:5000/app"},
		{"registry.example.org./app", "registry.example.org.attacker.com/app"},
		{"localhost/app", "LOCALHOST:08080/app"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ra, errA := reference.Parse(a)
		rb, errB := reference.Parse(b)
		if errA != nil {
			return
		}
		// Every spelling of a's host selects a, and selects b exactly when b
		// has the same canonical host.
		named, err := distref.ParseNormalizedNamed(a)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, but the runtime rejects it: %v", a, ra, err)
		}
		written, path := distref.Domain(named), distref.Path(named)
		spellings := append([]string{written + "/" + path, ra.Name()}, respell(written, path)...)
		for _, s := range spellings {
			r, err := reference.Parse(s)
			if err != nil {
				continue // refused: never unmatched
			}
			if r.Name() != ra.Name() {
				t.Fatalf("%q and %q name one repository on one server, but Parse gives %q and %q", a, s, ra.Name(), r.Name())
			}
			host, _, _ := strings.Cut(s, "/")
			if host == "" || !strings.ContainsAny(host, ".:[") && strings.ToLower(host) != "localhost" {
				continue
			}
			pats, err := compilePatterns(host+"/**", true)
			if err != nil {
				t.Fatalf("pattern %q/** refused, but the reference %q is accepted: %v", host, s, err)
			}
			if !anySelects(pats, ra) {
				t.Errorf("pattern %q/** does not select %q (%s)", host, a, ra.Name())
			}
			if errB == nil && anySelects(pats, rb) != (rb.Registry() == ra.Registry()) {
				t.Errorf("pattern %q/** on %q (%s): selected %v, but its host is %q and the pattern's %q",
					host, b, rb.Name(), !(rb.Registry() == ra.Registry()), rb.Registry(), ra.Registry())
			}
		}
	})
}

func anySelects(pats []*pattern, r reference.Reference) bool {
	segs := strings.Split(r.Repository(), "/")
	for _, p := range pats {
		if p.matches(r.Registry(), segs) {
			return true
		}
	}
	return false
}
