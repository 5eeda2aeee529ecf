package workload

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResources(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		resource string
		known    bool
	}{
		{Kind{"", "Pod"}, "pods", true},
		{Kind{"", "ReplicationController"}, "replicationcontrollers", true},
		{Kind{"", "PodTemplate"}, "podtemplates", true},
		{Kind{"apps", "Deployment"}, "deployments", true},
		{Kind{"apps", "ReplicaSet"}, "replicasets", true},
		{Kind{"apps", "StatefulSet"}, "statefulsets", true},
		{Kind{"apps", "DaemonSet"}, "daemonsets", true},
		{Kind{"batch", "Job"}, "jobs", true},
		{Kind{"batch", "CronJob"}, "cronjobs", true},
		{Kind{"pkg.crossplane.io", "Provider"}, "providers", true},
		{Kind{"pkg.crossplane.io", "Configuration"}, "configurations", true},
		{Kind{"pkg.crossplane.io", "Function"}, "functions", true},
		{Kind{"other.pkg.crossplane.io", "Function"}, "functions", true},
		{Kind{"example.org", "Provider"}, "", false},
		{Kind{"apps", "Pod"}, "", false},
		{Kind{"tekton.dev", "Task"}, "", false},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			r, ok := Resource(tc.kind)
			if r != tc.resource || ok != tc.known {
				t.Fatalf("Resource = %q, %v; want %q, %v", r, ok, tc.resource, tc.known)
			}
			if !tc.known {
				return
			}
			if k, ok := KindOf(tc.kind.Group, r); !ok || k != tc.kind {
				t.Errorf("KindOf(%q, %q) = %v, %v; want %v", tc.kind.Group, r, k, ok, tc.kind)
			}
		})
	}
	for _, gr := range [][2]string{{"", "deployments"}, {"apps", "pods"}, {"example.org", "providers"}, {"", ""}} {
		if k, ok := KindOf(gr[0], gr[1]); ok {
			t.Errorf("KindOf(%q, %q) = %v", gr[0], gr[1], k)
		}
	}
}

func TestCheckType(t *testing.T) {
	deployment := Kind{"apps", "Deployment"}
	for _, tc := range []struct {
		name    string
		kind    Kind
		version string
		obj     string
		wantErr string
	}{
		{"agrees", deployment, "v1", `{"apiVersion":"apps/v1","kind":"Deployment"}`, ""},
		{"core group", Kind{"", "Pod"}, "v1", `{"apiVersion":"v1","kind":"Pod"}`, ""},
		{"states nothing", deployment, "v1", `{"spec":{}}`, ""},
		{"null and empty are not stated", deployment, "v1", `{"apiVersion":null,"kind":""}`, ""},
		{"another kind", deployment, "v1", `{"apiVersion":"apps/v1","kind":"ReplicaSet"}`, `the object's kind "ReplicaSet" is not "Deployment"`},
		{"another group", deployment, "v1", `{"apiVersion":"v1","kind":"Deployment"}`, `the object's apiVersion "v1" is not "apps/v1"`},
		{"another version", deployment, "v1", `{"apiVersion":"apps/v1beta2"}`, `the object's apiVersion "apps/v1beta2" is not "apps/v1"`},
		{"kind case", Kind{"", "Pod"}, "v1", `{"kind":"pod"}`, `the object's kind "pod" is not "Pod"`},
		{"kind not a string", deployment, "v1", `{"kind":{"kind":"Deployment"}}`, "the object's kind is not a string"},
		{"apiVersion not a string", deployment, "v1", `{"apiVersion":1}`, "the object's apiVersion is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckType(tc.kind, tc.version, decode(t, tc.obj))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCrossplaneRegistry: a package that names no registry is the
// Crossplane registry's, as Crossplane pulls it (go-containerregistry's
// name.ParseReference with name.WithDefaultRegistry): the image is
// reported fully qualified; one that names its registry stays as written.
func TestCrossplaneRegistry(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name     string
		registry string // "" for the default
		pkg      string
		want     string
	}{
		{"org and name", "", "crossplane-contrib/provider-aws:v1", "xpkg.crossplane.io/crossplane-contrib/provider-aws:v1"},
		{"name alone gets no library/", "", "provider-aws:v1", "xpkg.crossplane.io/provider-aws:v1"},
		{"no tag", "", "crossplane-contrib/provider-aws", "xpkg.crossplane.io/crossplane-contrib/provider-aws"},
		{"digest", "", "crossplane-contrib/provider-aws@" + digest, "xpkg.crossplane.io/crossplane-contrib/provider-aws@" + digest},
		{"a dot in the tag is no registry", "", "crossplane-contrib/provider-aws:v1.2", "xpkg.crossplane.io/crossplane-contrib/provider-aws:v1.2"},
		{"names its registry", "", "xpkg.upbound.io/upbound/provider-aws:v1", "xpkg.upbound.io/upbound/provider-aws:v1"},
		{"docker.io written", "", "docker.io/crossplane/provider-aws:v1", "docker.io/crossplane/provider-aws:v1"},
		{"a port", "", "registry:5000/p:v1", "registry:5000/p:v1"},
		{"localhost", "", "localhost/p:v1", "localhost/p:v1"},
		{"empty stays empty", "", "", ""},
		{"the Upbound registry", "xpkg.upbound.io", "crossplane-contrib/provider-aws:v1", "xpkg.upbound.io/crossplane-contrib/provider-aws:v1"},
		{"a registry with a port", "registry.internal:5000", "team/fn:v1", "registry.internal:5000/team/fn:v1"},
		{"Docker Hub", "docker.io", "provider-aws:v1", "docker.io/provider-aws:v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.registry != "" {
				opts = append(opts, CrossplaneRegistry(tc.registry))
			}
			e, err := NewExtractor(opts...)
			if err != nil {
				t.Fatal(err)
			}
			imgs, err := e.Images(Kind{"pkg.crossplane.io", "Provider"}, map[string]any{"spec": map[string]any{"package": tc.pkg}})
			if err != nil {
				t.Fatal(err)
			}
			want := []Image{{Path: "spec.package", Image: tc.want, Pointer: "/spec/package"}}
			if diff := cmp.Diff(want, imgs); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"", "https://xpkg.crossplane.io", "xpkg.crossplane.io/org", "registry", "xpkg crossplane.io", "a@b.c"} {
		_, err := NewExtractor(CrossplaneRegistry(bad))
		if err == nil || !strings.Contains(err.Error(), "crossplane registry") {
			t.Errorf("CrossplaneRegistry(%q): error %v", bad, err)
		}
	}
}
