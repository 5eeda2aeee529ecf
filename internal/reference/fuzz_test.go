package reference

import (
	"strings"
	"testing"

	distref "github.com/distribution/reference"
	"github.com/google/go-cmp/cmp"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"nginx",
		"nginx:1.27@" + digest256,
		"index.docker.io/library/nginx",
		"registry-1.docker.io/nginx",
		"Registry.Example.ORG:5000/team/app:V1",
		"Docker.IO/nginx",
		"MyRegistry/app",
		"LOCALHOST/app",
		"localhost:5000",
		"[::1]:5000/app@" + digest512,
		"Foo//bar",
		"example.com/a/../b",
		"ghcr.io/org/app@sha256:" + strings.ToUpper(sha256Hex),
		"example.com/a__b/c---d/e.f:v_1.0-rc",
		sha256Hex,
		"sha256:" + sha256Hex,
		"127.0.0.1:05000/app",
		"[0:0::FFFF:7F00:1]:5000/app",
		"registry.example.org:443/app",
		"registry-1.docker.io/library/nginx",
		"0x7f.0.0.1/app",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if _, runtimeErr := distref.ParseNormalizedNamed(s); runtimeErr != nil && err == nil {
			t.Fatalf("Parse(%q) = %q, but the runtime rejects it: %v", s, r, runtimeErr)
		}
		if err != nil {
			return
		}
		if name := r.Name(); strings.ToLower(name) != name {
			t.Errorf("Parse(%q).Name() = %q has upper case", s, name)
		}
		if host, err := CanonicalHost(r.Registry()); err != nil || host != r.Registry() {
			t.Errorf("Parse(%q).Registry() = %q is not canonical: CanonicalHost gives %q, %v", s, r.Registry(), host, err)
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, r, err)
		}
		want, got := partsOf(r), partsOf(again)
		want.Original = r.String()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parse(Parse(%q).String()) (-want +got):\n%s", s, diff)
		}
	})
}
