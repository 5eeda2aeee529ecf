package reference

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalHost(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"registry.example.org", "registry.example.org"},
		{"Registry.Example.ORG", "registry.example.org"},
		{"registry.example.org:5000", "registry.example.org:5000"},
		// Leading zeros: every dialer reads the port as a number.
		{"127.0.0.1:05000", "127.0.0.1:5000"},
		{"127.0.0.1:0005000", "127.0.0.1:5000"},
		{"localhost:08080", "localhost:8080"},
		{"LOCALHOST", "localhost"},
		{"127.0.0.1", "127.0.0.1"},
		{"10.0.0.255:65535", "10.0.0.255:65535"},
		// IPv6 text forms: RFC 5952.
		{"[::1]", "[::1]"},
		{"[0:0::1]", "[::1]"},
		{"[0:0:0:0:0:0:0:1]:5000", "[::1]:5000"},
		{"[2001:DB8::1]", "[2001:db8::1]"},
		{"[2001:0db8:0000:0000:0000:0000:0000:0001]", "[2001:db8::1]"},
		{"[fe80:0:0:1:0:0:0:0]", "[fe80:0:0:1::]"},
		{"[fe80:0:0:0:1:0:0:0]", "[fe80::1:0:0:0]"},
		// IPv4-mapped IPv6 connects to the IPv4 address.
		{"[::ffff:7f00:1]:5000", "127.0.0.1:5000"},
		{"[0:0:0:0:0:FFFF:7F00:0001]", "127.0.0.1"},
		// Docker Hub's hosts.
		{"docker.io", "docker.io"},
		{"index.docker.io", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"Registry-1.Docker.IO", "docker.io"},
		{"registry.hub.docker.com", "docker.io"},
		// With a port they are other servers.
		{"registry-1.docker.io:5000", "registry-1.docker.io:5000"},
		// A name that only ends like one is another host.
		{"registry.example.org.attacker.com", "registry.example.org.attacker.com"},
		{"docker.io.attacker.com", "docker.io.attacker.com"},
		// Numbers in inner labels are names.
		{"123.example.org", "123.example.org"},
		{"0x7f.example.org", "0x7f.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalHost(tt.in)
			if err != nil {
				t.Fatalf("CanonicalHost(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CanonicalHost(%q) (-want +got):\n%s", tt.in, diff)
			}
			again, err := CanonicalHost(got)
			if err != nil || again != got {
				t.Errorf("CanonicalHost(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestCanonicalHostRefuses(t *testing.T) {
	const numeric = "is a numeric address not written as four decimal numbers without leading zeros (a.b.c.d); " +
		"resolvers disagree about which address it is"
	defaultPort := func(port string, n string) string {
		return "registry port " + port + " is a default port: write the host without it (the runtime configures and " +
			"authenticates host:" + n + " as another registry host than host, and over plain HTTP it is another server)"
	}
	tests := []struct {
		in, reason string
	}{
		{"", "empty registry host"},
		{"registry.example.org:", `invalid registry port ""`},
		{"registry.example.org:0", "registry port 0 is out of range: want 1 to 65535"},
		{"registry.example.org:00000", "registry port 00000 is out of range: want 1 to 65535"},
		{"registry.example.org:65536", "registry port 65536 is out of range: want 1 to 65535"},
		{"registry.example.org:99999999999999999999999", "registry port 99999999999999999999999 is out of range: want 1 to 65535"},
		{"registry.example.org:443", defaultPort("443", "443")},
		{"registry.example.org:0443", defaultPort("0443", "443")},
		{"registry.example.org:80", defaultPort("80", "80")},
		{"docker.io:443", defaultPort("443", "443")},
		{"[::1]:443", defaultPort("443", "443")},
		{"registry.example.org.", `registry host "registry.example.org." ends with a dot, which the runtime's grammar does not accept`},
		{"registry.example.org.:5000", `registry host "registry.example.org.:5000" ends with a dot, which the runtime's grammar does not accept`},
		{"127.1", `registry host "127.1" ` + numeric},
		{"127.1:5000", `registry host "127.1" ` + numeric},
		{"0x7f.0.0.1", `registry host "0x7f.0.0.1" ` + numeric},
		{"127.0.0.0x1", `registry host "127.0.0.0x1" ` + numeric},
		{"017700000001:5000", `registry host "017700000001" ` + numeric},
		{"2130706433:5000", `registry host "2130706433" ` + numeric},
		{"127.000.0.1", `registry host "127.000.0.1" ` + numeric},
		{"0177.0.0.1", `registry host "0177.0.0.1" ` + numeric},
		{"256.0.0.1", `registry host "256.0.0.1" ` + numeric},
		{"1.2.3.4.5", `registry host "1.2.3.4.5" ` + numeric},
		{"example.0x", `registry host "example.0x" ` + numeric},
		{"[::1:2:3:4:5:6:7:8]", "registry host [::1:2:3:4:5:6:7:8] is not an IPv6 address"},
		{"[1::2::3]", "registry host [1::2::3] is not an IPv6 address"},
		{"[::ffff:127.0.0.1]", `invalid registry host "[::ffff:127.0.0.1]"`},
		{"[::1%eth0]", `invalid registry host "[::1%eth0]"`},
		{"exa_mple.com", `invalid registry host "exa_mple.com"`},
		{"régistry.example.org", "contains a non-ASCII character"},
		{"registry.example.org/app", `invalid registry host "registry.example.org/app"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalHost(tt.in)
			if err == nil {
				t.Fatalf("CanonicalHost(%q) = %q, want error", tt.in, got)
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("CanonicalHost(%q) error %v is not an *InvalidError matching ErrInvalid", tt.in, err)
			}
			if diff := cmp.Diff(&InvalidError{Input: tt.in, Reason: tt.reason}, invalid); diff != "" {
				t.Errorf("CanonicalHost(%q) error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseRegistrySpellings checks that the spellings of one registry the
// runtime pulls from the same server give one Name, so the same patterns
// select them.
func TestParseRegistrySpellings(t *testing.T) {
	tests := []struct {
		want      string
		spellings []string
	}{{
		want:      "127.0.0.1:5000/app:v1",
		spellings: []string{"127.0.0.1:5000/app:v1", "127.0.0.1:05000/app:v1", "127.0.0.1:000005000/app:v1", "[::ffff:7f00:1]:5000/app:v1", "[0::FFFF:7F00:1]:05000/app:v1"},
	}, {
		want:      "[::1]:5000/team/app",
		spellings: []string{"[::1]:5000/team/app", "[0:0::1]:5000/team/app", "[0000:0000:0000:0000:0000:0000:0000:0001]:05000/team/app"},
	}, {
		want:      "[2001:db8::1]/app",
		spellings: []string{"[2001:DB8::1]/app", "[2001:db8:0:0:0:0:0:1]/app", "[2001:0DB8::0001]/app"},
	}, {
		want:      "registry.example.org:5000/app",
		spellings: []string{"registry.example.org:5000/app", "REGISTRY.example.org:05000/app"},
	}, {
		want:      "docker.io/bitnami/redis",
		spellings: []string{"bitnami/redis", "docker.io/bitnami/redis", "index.docker.io/bitnami/redis", "registry-1.docker.io/bitnami/redis", "registry.hub.docker.com/bitnami/redis"},
	}}
	for _, tt := range tests {
		for _, in := range tt.spellings {
			t.Run(in, func(t *testing.T) {
				r, err := Parse(in)
				if err != nil {
					t.Fatalf("Parse(%q): %v", in, err)
				}
				if diff := cmp.Diff(tt.want, r.String()); diff != "" {
					t.Errorf("Parse(%q).String() (-want +got):\n%s", in, diff)
				}
			})
		}
	}
}

func TestParseRefusesRegistrySpellings(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{"registry.example.org:443/app", "registry port 443 is a default port: write the host without it (the runtime configures and " +
			"authenticates host:443 as another registry host than host, and over plain HTTP it is another server)"},
		{"localhost:80/app", "registry port 80 is a default port: write the host without it (the runtime configures and " +
			"authenticates host:80 as another registry host than host, and over plain HTTP it is another server)"},
		{"127.0.0.1:0/app", "registry port 0 is out of range: want 1 to 65535"},
		{"127.0.0.1:70000/app", "registry port 70000 is out of range: want 1 to 65535"},
		{"registry.example.org./app", `registry host "registry.example.org." ends with a dot, which the runtime's grammar does not accept`},
		{"127.1:5000/app", `registry host "127.1" is a numeric address not written as four decimal numbers without leading zeros (a.b.c.d); resolvers disagree about which address it is`},
		{"0x7f.0.0.1/app", `registry host "0x7f.0.0.1" is a numeric address not written as four decimal numbers without leading zeros (a.b.c.d); resolvers disagree about which address it is`},
		{"017700000001:5000/app", `registry host "017700000001" is a numeric address not written as four decimal numbers without leading zeros (a.b.c.d); resolvers disagree about which address it is`},
		{"registry-1.docker.io/nginx", `repository "nginx" on registry-1.docker.io has no namespace; Docker Hub's official images are docker.io/library/nginx`},
		{"registry.hub.docker.com/nginx", `repository "nginx" on registry.hub.docker.com has no namespace; Docker Hub's official images are docker.io/library/nginx`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, r)
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Parse(%q) error %T is not *InvalidError", tt.in, err)
			}
			if diff := cmp.Diff(&InvalidError{Input: tt.in, Reason: tt.reason}, invalid); diff != "" {
				t.Errorf("Parse(%q) error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
