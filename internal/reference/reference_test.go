package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	sha256Hex = "2b4ed6bd8ab6f0d4ab2a4ac2c5b2d2e6f6b1c51e0a9c8c2f5d3e4a1b7c9d0e1f"
	sha512Hex = sha256Hex + sha256Hex
	digest256 = "sha256:" + sha256Hex
	digest512 = "sha512:" + sha512Hex
)

// parts is what a Reference says about itself, for comparing with cmp.
type parts struct {
	Registry, Repository, Name, Tag, Digest, Identifier, String, Original string
}

func partsOf(r Reference) parts {
	return parts{
		Registry:   r.Registry(),
		Repository: r.Repository(),
		Name:       r.Name(),
		Tag:        r.Tag(),
		Digest:     r.Digest(),
		Identifier: r.Identifier(),
		String:     r.String(),
		Original:   r.Original(),
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want parts
	}{{
		in: "nginx",
		want: parts{Registry: "docker.io", Repository: "library/nginx", Name: "docker.io/library/nginx",
			Identifier: "latest", String: "docker.io/library/nginx"},
	}, {
		in: "nginx:1.27",
		want: parts{Registry: "docker.io", Repository: "library/nginx", Name: "docker.io/library/nginx",
			Tag: "1.27", Identifier: "1.27", String: "docker.io/library/nginx:1.27"},
	}, {
		in: "bitnami/redis",
		want: parts{Registry: "docker.io", Repository: "bitnami/redis", Name: "docker.io/bitnami/redis",
			Identifier: "latest", String: "docker.io/bitnami/redis"},
	}, {
		in: "docker.io/bitnami/redis",
		want: parts{Registry: "docker.io", Repository: "bitnami/redis", Name: "docker.io/bitnami/redis",
			Identifier: "latest", String: "docker.io/bitnami/redis"},
	}, {
		in: "Registry.Example.ORG/app",
		want: parts{Registry: "registry.example.org", Repository: "app", Name: "registry.example.org/app",
			Identifier: "latest", String: "registry.example.org/app"},
	}, {
		in: "Registry.Example.ORG:5000/team/app:V1",
		want: parts{Registry: "registry.example.org:5000", Repository: "team/app", Name: "registry.example.org:5000/team/app",
			Tag: "V1", Identifier: "V1", String: "registry.example.org:5000/team/app:V1"},
	}, {
		in: "LOCALHOST/app",
		want: parts{Registry: "localhost", Repository: "app", Name: "localhost/app",
			Identifier: "latest", String: "localhost/app"},
	}, {
		in: "localhost/app",
		want: parts{Registry: "localhost", Repository: "app", Name: "localhost/app",
			Identifier: "latest", String: "localhost/app"},
	}, {
		in: "localhost:5000/app:dev",
		want: parts{Registry: "localhost:5000", Repository: "app", Name: "localhost:5000/app",
			Tag: "dev", Identifier: "dev", String: "localhost:5000/app:dev"},
	}, {
		in: "127.0.0.1:5000/app",
		want: parts{Registry: "127.0.0.1:5000", Repository: "app", Name: "127.0.0.1:5000/app",
			Identifier: "latest", String: "127.0.0.1:5000/app"},
	}, {
		in: "[::1]:5000/app",
		want: parts{Registry: "[::1]:5000", Repository: "app", Name: "[::1]:5000/app",
			Identifier: "latest", String: "[::1]:5000/app"},
	}, {
		in: "[2001:DB8::1]/app",
		want: parts{Registry: "[2001:db8::1]", Repository: "app", Name: "[2001:db8::1]/app",
			Identifier: "latest", String: "[2001:db8::1]/app"},
	}, {
		// A single component is always a Docker Hub repository, even "localhost:5000".
		in: "localhost:5000",
		want: parts{Registry: "docker.io", Repository: "library/localhost", Name: "docker.io/library/localhost",
			Tag: "5000", Identifier: "5000", String: "docker.io/library/localhost:5000"},
	}, {
		in: "example.com/a.b/c__d/e-f/g---h/i_j",
		want: parts{Registry: "example.com", Repository: "a.b/c__d/e-f/g---h/i_j", Name: "example.com/a.b/c__d/e-f/g---h/i_j",
			Identifier: "latest", String: "example.com/a.b/c__d/e-f/g---h/i_j"},
	}, {
		in: "ghcr.io/org/app@" + digest256,
		want: parts{Registry: "ghcr.io", Repository: "org/app", Name: "ghcr.io/org/app",
			Digest: digest256, Identifier: digest256, String: "ghcr.io/org/app@" + digest256},
	}, {
		in: "ghcr.io/org/app@" + digest512,
		want: parts{Registry: "ghcr.io", Repository: "org/app", Name: "ghcr.io/org/app",
			Digest: digest512, Identifier: digest512, String: "ghcr.io/org/app@" + digest512},
	}, {
		// With tag and digest, the digest is the image; the tag is kept for display.
		in: "nginx:1.27@" + digest256,
		want: parts{Registry: "docker.io", Repository: "library/nginx", Name: "docker.io/library/nginx",
			Tag: "1.27", Digest: digest256, Identifier: digest256, String: "docker.io/library/nginx:1.27@" + digest256},
	}}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			tt.want.Original = tt.in
			if diff := cmp.Diff(tt.want, partsOf(r)); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseDockerHubSpellings(t *testing.T) {
	const want = "docker.io/library/nginx:1.27"
	for _, in := range []string{
		"nginx:1.27",
		"library/nginx:1.27",
		"docker.io/nginx:1.27",
		"docker.io/library/nginx:1.27",
		"index.docker.io/nginx:1.27",
		"index.docker.io/library/nginx:1.27",
		// The runtime pulls docker.io images from registry-1.docker.io, and
		// registry.hub.docker.com serves the same registry: a policy for
		// docker.io must not be escaped by naming them.
		"registry-1.docker.io/library/nginx:1.27",
		"Registry-1.Docker.IO/library/nginx:1.27",
		"registry.hub.docker.com/library/nginx:1.27",
	} {
		t.Run(in, func(t *testing.T) {
			r, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", in, err)
			}
			if diff := cmp.Diff(want, r.String()); diff != "" {
				t.Errorf("Parse(%q).String() (-want +got):\n%s", in, diff)
			}
		})
	}
}

func TestParseHostCase(t *testing.T) {
	lower, err := Parse("registry.example.org/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"Registry.Example.ORG/app:v1", "REGISTRY.EXAMPLE.ORG/app:v1"} {
		t.Run(in, func(t *testing.T) {
			r, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", in, err)
			}
			want, got := partsOf(lower), partsOf(r)
			want.Original = in
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", in, diff)
			}
		})
	}
}

func TestSiblingNamesDiffer(t *testing.T) {
	app, err := Parse("registry.example.org/app")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := Parse("registry.example.org/app-evil")
	if err != nil {
		t.Fatal(err)
	}
	if app.Name() == evil.Name() {
		t.Errorf("Name() of sibling repositories are both %q", app.Name())
	}
	if diff := cmp.Diff([]string{"registry.example.org/app", "registry.example.org/app-evil"},
		[]string{app.Name(), evil.Name()}); diff != "" {
		t.Errorf("Name() (-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		in, reason string
	}{
		{"", "empty reference"},
		{" nginx", "contains whitespace"},
		{"nginx ", "contains whitespace"},
		{"nginx:1\n", "contains whitespace"},
		{"ngi\tnx", "contains whitespace"},
		{"nginx\x00", "contains a control character"},
		{"nginx\x7f", "contains a control character"},
		{"régistry.example.org/app", "contains a non-ASCII character"},
		{"xn--rgistry-bya.example.org/app\u200b", "contains a non-ASCII character"},
		{"registry.\u212aelvin.org/app", "contains a non-ASCII character"},
		{strings.Repeat("a/", 600), "longer than 1024 characters"},
		{sha256Hex, "a 64-character hex string is an image ID, not a reference"},
		{"Foo//bar", "empty path component"},
		{"a//b", "empty path component"},
		{"/nginx", "empty path component"},
		{"nginx/", "empty path component"},
		{"example.com/a/../b", `relative path component ".."`},
		{"example.com/./b", `relative path component "."`},
		{"./nginx", `relative path component "."`},
		{"../nginx", `relative path component ".."`},
		{":v1", "missing repository name"},
		{"@" + digest256, "missing repository name"},
		{"nginx:", "empty tag"},
		{"nginx@", "empty digest"},
		{"nginx:-v1", `invalid tag "-v1"`},
		{"nginx:v1+x", `invalid tag "v1+x"`},
		{"nginx:" + long(129), "tag has 129 characters, over the limit of 128"},
		{"nginx@" + digest256 + "@" + digest256, `more than one "@"`},
		{"nginx@" + sha256Hex, `digest "` + sha256Hex + `" has no algorithm`},
		{"nginx@md5:d41d8cd98f00b204e9800998ecf8427e", `unsupported digest algorithm "md5", want sha256 or sha512`},
		{"nginx@sha384:" + sha256Hex + sha256Hex[:32], `unsupported digest algorithm "sha384", want sha256 or sha512`},
		{"nginx@SHA256:" + sha256Hex, `unsupported digest algorithm "SHA256", want sha256 or sha512`},
		{"nginx@sha256:" + strings.ToUpper(sha256Hex), "digest hex must be lower case"},
		{"nginx@sha256:" + sha256Hex[:63] + "g", `digest contains non-hex character 'g'`},
		{"nginx@sha256:" + sha256Hex[:63], "sha256 digest has 63 hex characters, want 64"},
		{"nginx@sha256:" + sha256Hex + "0", "sha256 digest has 65 hex characters, want 64"},
		{"nginx@sha512:" + sha256Hex, "sha512 digest has 64 hex characters, want 128"},
		{"Nginx", `repository path "Nginx" must be lower case`},
		{"docker.io/Library/nginx", `repository path "Library/nginx" must be lower case`},
		{"Foo/Bar", `repository path "Bar" must be lower case`},
		{"example.com/a..b", `invalid path component "a..b"`},
		{"example.com/a___b", `invalid path component "a___b"`},
		{"example.com/-a", `invalid path component "-a"`},
		{"example.com/a-", `invalid path component "a-"`},
		{"example.com/a._b", `invalid path component "a._b"`},
		{"example.com/a+b", `invalid path component "a+b"`},
		{"example.com/a:b/c", `invalid path component "a:b"`},
		{"example.com:b/c", `invalid registry port "b"`},
		{"example.com:/a", `invalid registry port ""`},
		{"-example.com/a", `invalid registry host "-example.com"`},
		{"example..com/a", `invalid registry host "example..com"`},
		{"exa_mple.com/a", `invalid registry host "exa_mple.com"`},
		{"[::1/a", `invalid registry host "[::1"`},
		{"[]:5000/a", `invalid registry host "[]:5000"`},
		{"[::g]/a", `invalid registry host "[::g]"`},
		{"[::1]x/a", `invalid registry host "[::1]x"`},
		{"[::1]", `invalid tag "1]"`},
		{"Docker.IO/nginx", `registry host "Docker.IO" must be written in lower case to name Docker Hub`},
		{"INDEX.DOCKER.IO/library/nginx", `registry host "INDEX.DOCKER.IO" must be written in lower case to name Docker Hub`},
		{"MyRegistry/app", `registry host "MyRegistry" is a host only because of its upper-case letters; ` +
			`lower-cased it would be a Docker Hub namespace`},
		{"example.com/" + long(244), "normalized name has 256 characters, over the limit of 255"},
		{"library/" + long(240), "normalized name has 258 characters, over the limit of 255"},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, r)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not match ErrInvalid", tt.in, err)
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Parse(%q) error %T is not *InvalidError", tt.in, err)
			}
			if diff := cmp.Diff(&InvalidError{Input: tt.in, Reason: tt.reason}, invalid); diff != "" {
				t.Errorf("Parse(%q) error (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(Reference{}, r, cmp.AllowUnexported(Reference{})); diff != "" {
				t.Errorf("Parse(%q) returned a non-zero Reference with its error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	_, err := Parse("Foo//bar")
	want := `invalid image reference "Foo//bar": empty path component`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error message (-want +got):\n%s", diff)
	}

	_, err = Parse(strings.Repeat("a", 2000))
	if got := len(err.Error()); got > 400 {
		t.Errorf("error message for a 2000-character input has %d characters, want it bounded", got)
	}
}

func TestWithDigest(t *testing.T) {
	tests := []struct {
		name, in, digest string
		want             parts
		wantErr          *InvalidError
	}{{
		name: "tag kept", in: "registry.example.org/app:1.0", digest: digest256,
		want: parts{Registry: "registry.example.org", Repository: "app", Name: "registry.example.org/app",
			Tag: "1.0", Digest: digest256, Identifier: digest256, String: "registry.example.org/app:1.0@" + digest256,
			Original: "registry.example.org/app:1.0"},
	}, {
		name: "no tag", in: "nginx", digest: digest512,
		want: parts{Registry: "docker.io", Repository: "library/nginx", Name: "docker.io/library/nginx",
			Digest: digest512, Identifier: digest512, String: "docker.io/library/nginx@" + digest512,
			Original: "nginx"},
	}, {
		name: "same digest", in: "nginx:1@" + digest256, digest: digest256,
		want: parts{Registry: "docker.io", Repository: "library/nginx", Name: "docker.io/library/nginx",
			Tag: "1", Digest: digest256, Identifier: digest256, String: "docker.io/library/nginx:1@" + digest256,
			Original: "nginx:1@" + digest256},
	}, {
		name: "other digest", in: "nginx:1@" + digest256, digest: "sha256:" + strings.Repeat("0", 64),
		wantErr: &InvalidError{
			Input:  "docker.io/library/nginx:1@sha256:" + strings.Repeat("0", 64),
			Reason: "already pinned to " + digest256,
		},
	}, {
		name: "bad digest", in: "nginx:1", digest: "sha256:abc",
		wantErr: &InvalidError{Input: "docker.io/library/nginx:1@sha256:abc", Reason: "sha256 digest has 3 hex characters, want 64"},
	}, {
		name: "zero reference", digest: digest256,
		wantErr: &InvalidError{Input: "@" + digest256, Reason: "missing repository name"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reference
			if tt.in != "" {
				var err error
				if r, err = Parse(tt.in); err != nil {
					t.Fatal(err)
				}
			}
			pinned, err := r.WithDigest(tt.digest)
			if tt.wantErr != nil {
				var invalid *InvalidError
				if !errors.As(err, &invalid) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("WithDigest(%q) error = %v, want *InvalidError matching ErrInvalid", tt.digest, err)
				}
				if diff := cmp.Diff(tt.wantErr, invalid); diff != "" {
					t.Errorf("WithDigest(%q) error (-want +got):\n%s", tt.digest, diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("WithDigest(%q): %v", tt.digest, err)
			}
			if diff := cmp.Diff(tt.want, partsOf(pinned)); diff != "" {
				t.Errorf("WithDigest(%q) (-want +got):\n%s", tt.digest, diff)
			}
			if diff := cmp.Diff(tt.in, r.Original()); diff != "" {
				t.Errorf("WithDigest changed its receiver (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZeroReference(t *testing.T) {
	var r Reference
	want := parts{Identifier: "latest"}
	if diff := cmp.Diff(want, partsOf(r)); diff != "" {
		t.Errorf("zero Reference (-want +got):\n%s", diff)
	}
}
