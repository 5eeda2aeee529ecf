package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/signet-dev/signet/test/clitest"
)

func TestPolicyExport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return clitest.WriteFile(t, dir, name, content) }
	static := write("static.yaml", `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: base}
spec:
  images: [{prefix: registry.example.org/base}]
  authorities: [{static: {action: pass}}]
`)
	regexp := write("regexp.yaml", `apiVersion: signet.dev/v1alpha1
kind: ImagePolicy
metadata: {name: ci, namespace: team-a}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - keyless:
        identities: [{issuer: "https://token.actions.githubusercontent.com", subjectRegExp: "https://github.com/acme/.+"}]
`)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		wantScopes []string
	}{
		{name: "to standard output", args: []string{"--policy", static, "--namespace", "team-a"},
			code: ExitOK, wantScopes: []string{"registry.example.org/base"}},
		{name: "refused, naming the field", args: []string{"--policy", static, "--policy", regexp, "--namespace", "team-a"},
			code: ExitDenied, stderr: []string{"ImagePolicy team-a/ci: spec.authorities[0].keyless.identities[0].subjectRegExp: policy.json's fulcio compares subjectEmail exactly"}},
		{name: "the ImagePolicy of another namespace does not matter", args: []string{"--policy", static, "--policy", regexp, "--namespace", "team-b"},
			code: ExitOK, wantScopes: []string{"registry.example.org/base"}},
		{name: "bad format", args: []string{"--policy", static, "--to", "kyverno"}, code: ExitUndecided, stderr: []string{"--to must be containers-policy"}},
		{name: "bad namespace", args: []string{"--policy", static, "--namespace", "../etc"}, code: ExitUndecided, stderr: []string{"is not a namespace name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"policy", "export", "--to", "containers-policy"}, tc.args...)
			var out, errOut bytes.Buffer
			if code := Execute(context.Background(), args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errOut.String())
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tc.wantScopes == nil {
				return
			}
			var f struct {
				Default    []map[string]any                       `json:"default"`
				Transports map[string]map[string][]map[string]any `json:"transports"`
			}
			if err := json.Unmarshal(out.Bytes(), &f); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
			}
			if len(f.Default) != 1 || f.Default[0]["type"] != "reject" {
				t.Errorf("default = %v, want reject (unmatched deny)", f.Default)
			}
			var scopes []string
			for s := range f.Transports["docker"] {
				scopes = append(scopes, s)
			}
			if strings.Join(scopes, ",") != strings.Join(tc.wantScopes, ",") {
				t.Errorf("scopes %v, want %v", scopes, tc.wantScopes)
			}
		})
	}
}
