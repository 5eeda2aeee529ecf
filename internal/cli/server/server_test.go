package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

// runServer runs a command line of the whole command tree.
func runServer(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	r := clitest.Run(t, Execute, args...)
	return r.Stdout, r.Stderr, r.Code
}

// TestServeFlagsRefused: serve refuses contradictory or unknown flag values
// before anything starts, saying which and why.
func TestServeFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tuf=false", "--tuf-mirror", "http://127.0.0.1:1"}, "--tuf=false turns TUF off but --tuf-mirror asks for it"},
		{[]string{"--tuf", "--trusted-root", "x.json"}, "--trusted-root replaces the default root"},
		{[]string{"--tuf-root", "root.json"}, "--tuf-root needs --tuf"},
		{[]string{"--tuf-mirror", "ftp://mirror"}, "want an http:// or https:// URL"},
		{[]string{"--registry-credential-providers", "aws,gcp"}, `--registry-credential-providers: unknown registry credential provider "gcp" (want aws, google, azure)`},
		{[]string{"--registry-credential-providers", "google,google"}, `--registry-credential-providers: registry credential provider "google" named twice`},
	} {
		_, stderr, code := runServer(t, append([]string{"serve"}, tc.args...)...)
		if code != cli.ExitUndecided || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestNamespaceOptInLabelFlag: every command with --namespace-opt-in takes
// --namespace-opt-in-label, refuses a value that is not a label key and
// refuses it without --namespace-opt-in, before anything starts.
func TestNamespaceOptInLabelFlag(t *testing.T) {
	policies := clitest.WriteTemp(t, "policies.yaml", []byte(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: all}
spec:
  images: [{glob: "**"}]
  authorities: [{static: {action: pass}}]
`))
	for _, cmd := range [][]string{
		{"serve"},
		{"node-agent", "--dir", t.TempDir()},
		{"policy", "test", "--policy", policies, "--image", "registry.example/app:v1"},
		{"policy", "export", "--to", "containers-policy", "--policy", policies},
	} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--namespace-opt-in", "--namespace-opt-in-label", "include=true"}, `--namespace-opt-in-label "include=true" is not a label key: name part must consist of alphanumeric characters`},
			{[]string{"--namespace-opt-in", "--namespace-opt-in-label", "Policy_Sigstore.dev/include"}, `--namespace-opt-in-label "Policy_Sigstore.dev/include" is not a label key: prefix part a lowercase RFC 1123 subdomain`},
			{[]string{"--namespace-opt-in-label", "policy.sigstore.dev/include"}, "--namespace-opt-in-label needs --namespace-opt-in"},
		} {
			args := append(append([]string(nil), cmd...), tc.args...)
			_, stderr, code := runServer(t, args...)
			if code != cli.ExitUndecided || !strings.Contains(stderr, tc.want) {
				t.Errorf("signet %v: exit %d, stderr %q; want 2 and %q", args, code, stderr, tc.want)
			}
		}
	}
}

// TestDefaultTrustTUF: with --tuf the default root starts as the embedded
// one without any request, stays so while the mirror is down, and becomes
// the mirror's once a refresh succeeds, with a new version.
func TestDefaultTrustTUF(t *testing.T) {
	s := sigstoretest.New(t)
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	srv := repo.Serve(t)
	srv.SetDown(true)
	o := tufOptions{enabled: true, mirror: srv.URL, rootFile: clitest.WriteTemp(t, "root.json", repo.InitialRoot()), interval: time.Hour}
	d, err := newDefaultTrust("", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 0 {
		t.Fatal("constructing the default root touched the mirror")
	}
	embedded := d.Version()
	if !strings.HasPrefix(embedded, "embedded:") {
		t.Fatalf("initial version %q", embedded)
	}
	tm, err := d.Material()
	if err != nil || len(tm.FulcioCertificateAuthorities()) == 0 {
		t.Fatalf("the embedded root is not in use: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	go d.Run(ctx, slogDiscard(), func() { changed <- struct{}{} })
	// The first refresh fails (mirror down): the embedded root stays.
	for srv.Requests() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if d.Version() != embedded {
		t.Fatal("a failed refresh replaced the default root")
	}
	cancel()

	// With the mirror up, a refresh brings the mirror's root.
	srv.SetDown(false)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, slogDiscard(), func() { changed <- struct{}{} })
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change after a successful refresh")
	}
	want, _ := trust.NewMaterial(s.TrustedRootJSON())
	if d.Version() != "tuf:"+want.Version {
		t.Fatalf("version %q, want tuf:%s", d.Version(), want.Version)
	}
	tm, _ = d.Material()
	if got := tm.FulcioCertificateAuthorities(); len(got) != 1 {
		t.Fatalf("material has %d CAs, want the test Sigstore's 1", len(got))
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParseImageFields(t *testing.T) {
	got, err := parseImageFields([]string{"Task.tekton.dev=spec.steps[].image,spec.sidecars[].image", "Widget=spec.image"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Kind.Group != "tekton.dev" || got[0].Kind.Kind != "Task" || len(got[0].Paths) != 2 || got[1].Kind.Group != "" {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{"Task.tekton.dev", "=spec.image", "Task="} {
		if _, err := parseImageFields([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestFlagUsageNamesOneValue: pflag takes a back-quoted word in a flag's
// usage as the name of its value in --help ("--policy path"). A quoted
// phrase would print as "--policy signet policy test".
func TestFlagUsageNamesOneValue(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: --help names its value %q", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand()) // every command, signet's and the cluster ones
}
