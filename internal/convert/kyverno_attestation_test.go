package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/signet-dev/signet/internal/verify"
)

// TestKyvernoConditionsInCEL evaluates the CEL each Kyverno condition
// becomes against predicates, with the outcome Kyverno's operators give
// (where the two differ, CEL must be the stricter).
func TestKyvernoConditionsInCEL(t *testing.T) {
	env, err := cel.NewEnv(cel.Variable("predicate", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	eval := func(t *testing.T, expr, predicate string) bool {
		t.Helper()
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", expr, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		var p any
		if err := json.Unmarshal([]byte(predicate), &p); err != nil {
			t.Fatal(err)
		}
		out, _, err := prg.Eval(map[string]any{"predicate": p})
		if err != nil {
			return false // signet denies a condition that does not evaluate
		}
		return out.Value() == true
	}
	for _, tc := range []struct {
		key, op, value string
		want           map[string]bool // predicate → outcome
	}{
		{`"{{ builder.id }}"`, "Equals", `"https://tekton.dev/chains/v2"`, map[string]bool{
			`{"builder":{"id":"https://tekton.dev/chains/v2"}}`: true,
			`{"builder":{"id":"https://tekton.dev/chains/v3"}}`: false,
			`{"builder":{"id":5}}`:                              false,
			`{"builder":{}}`:                                    false, // Kyverno: the variable does not resolve
		}},
		{`"{{builder.id}}"`, "NotEquals", `"https://evil.example"`, map[string]bool{
			`{"builder":{"id":"https://tekton.dev/chains/v2"}}`: true,
			`{"builder":{"id":"https://evil.example"}}`:         false,
			`{"builder":{"id":true}}`:                           false, // Kyverno: type mismatch is false
		}},
		{`"{{ reviewed }}"`, "Equal", `true`, map[string]bool{`{"reviewed":true}`: true, `{"reviewed":false}`: false, `{"reviewed":"true"}`: false}},
		{`"{{ reviewed }}"`, "NotEqual", `true`, map[string]bool{`{"reviewed":false}`: true, `{"reviewed":true}`: false, `{"reviewed":"false"}`: false}},
		{`"{{ reviewers }}"`, "AnyIn", `["ana@example.com","bob@example.com"]`, map[string]bool{
			`{"reviewers":["eve@example.com","bob@example.com"]}`: true,
			`{"reviewers":["eve@example.com"]}`:                   false,
			`{"reviewers":"ana@example.com"}`:                     true,
			`{"reviewers":[]}`:                                    false,
		}},
		{`"{{ reviewers }}"`, "AllIn", `["ana@example.com","bob@example.com"]`, map[string]bool{
			`{"reviewers":["ana@example.com","bob@example.com"]}`: true,
			`{"reviewers":["ana@example.com","eve@example.com"]}`: false,
			`{"reviewers":"bob@example.com"}`:                     true,
		}},
		{`"{{ licenses }}"`, "AllNotIn", `["GPL-3.0","AGPL-3.0"]`, map[string]bool{
			`{"licenses":["MIT","Apache-2.0"]}`: true,
			`{"licenses":["MIT","GPL-3.0"]}`:    false,
			`{"licenses":"AGPL-3.0"}`:           false,
			// Kyverno would read "*" as a wildcard matching GPL-3.0.
			`{"licenses":["*"]}`: false,
			`{"licenses":[3]}`:   false, // Kyverno compares "3"; CEL stays strict
		}},
		{`"{{ licenses }}"`, "AnyNotIn", `["MIT"]`, map[string]bool{
			`{"licenses":["MIT","GPL-3.0"]}`: true,
			`{"licenses":["MIT"]}`:           false,
		}},
		{`"{{ \"build-type\".in }}"`, "Equals", `"x"`, map[string]bool{`{"build-type":{"in":"x"}}`: true, `{"build-type":{"in":"y"}}`: false}},
	} {
		expr, err := kyConditionCEL(kyCondition{Key: json.RawMessage(tc.key), Operator: tc.op, Value: json.RawMessage(tc.value)})
		if err != nil {
			t.Fatalf("%s %s %s: %v", tc.key, tc.op, tc.value, err)
		}
		if err := verify.CheckCondition(expr); err != nil {
			t.Errorf("%s: signet rejects it: %v", expr, err)
		}
		for predicate, want := range tc.want {
			if got := eval(t, expr, predicate); got != want {
				t.Errorf("%s %s %s on %s: %v, want %v (CEL: %s)", tc.key, tc.op, tc.value, predicate, got, want, expr)
			}
		}
	}
}

// TestKyvernoConditionsRefused: what CEL could not keep the meaning of is
// refused, with the reason.
func TestKyvernoConditionsRefused(t *testing.T) {
	for _, tc := range []struct{ key, op, value, want string }{
		{`"{{ request.object.metadata.name }}"`, "Equals", `"x"`, "Kyverno's context (request)"},
		{`"{{ length(reviewers) }}"`, "Equals", `"x"`, "not a plain field name"},
		{`"{{ reviewers[0] }}"`, "Equals", `"x"`, "not a plain field name"},
		{`"builder.id"`, "Equals", `"x"`, "not a {{ }} expression"},
		{`5`, "Equals", `"x"`, "not a string"},
		{`"{{ builder.id }}"`, "Equals", `"https://github.com/acme/*"`, "wildcards"},
		{`"{{ builder.id }}"`, "Equals", `"{{ images.x }}"`, "variables"},
		{`"{{ age }}"`, "Equals", `"1h"`, "durations"},
		{`"{{ size }}"`, "Equals", `"2Gi"`, "quantities"},
		{`"{{ count }}"`, "Equals", `3`, "only a string or a boolean"},
		{`"{{ count }}"`, "GreaterThan", `3`, `operator "GreaterThan" is not converted`},
		{`"{{ names }}"`, "AnyIn", `"a"`, "only a list of strings"},
		{`"{{ names }}"`, "In", `["a"]`, `operator "In" is not converted`},
	} {
		_, err := kyConditionCEL(kyCondition{Key: json.RawMessage(tc.key), Operator: tc.op, Value: json.RawMessage(tc.value)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s %s: %v, want an error saying %q", tc.key, tc.op, tc.value, err, tc.want)
		}
	}
}

// TestKyvernoRoots: Kyverno's keyless roots become certificate
// authorities: one per self-signed root, or one chain ordered from the
// intermediate to the root whatever the order given.
func TestKyvernoRoots(t *testing.T) {
	newCert := func(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	root, rootKey, rootPEM := newCert("root", nil, nil)
	_, _, interPEM := newCert("intermediate", root, rootKey)
	_, _, otherRootPEM := newCert("other root", nil, nil)

	for _, tc := range []struct {
		name, in string
		want     []string // chains
		why      string
	}{
		{"intermediate then root", interPEM + rootPEM, []string{interPEM + rootPEM}, ""},
		{"root then intermediate", rootPEM + interPEM, []string{interPEM + rootPEM}, ""},
		{"two roots", rootPEM + otherRootPEM, []string{rootPEM, otherRootPEM}, ""},
		{"an intermediate of another root", otherRootPEM + interPEM, nil, "do not chain to the root"},
		{"intermediates with two roots", rootPEM + otherRootPEM + interPEM, nil, "several roots"},
		{"no root", interPEM, nil, "no self-signed root"},
		{"not PEM", "roots", nil, "no self-signed root"},
	} {
		got, why := kyRoots(tc.in)
		if tc.why != "" || why != "" {
			if !strings.Contains(why, tc.why) || tc.why == "" {
				t.Errorf("%s: %q, want a reason saying %q", tc.name, why, tc.why)
			}
			continue
		}
		var chains []string
		for _, ca := range got {
			chains = append(chains, ca.CertChain)
		}
		if !slices.Equal(chains, tc.want) {
			t.Errorf("%s: %d chains, not the %d expected in order", tc.name, len(chains), len(tc.want))
		}
	}
}

// FuzzKyvernoCondition: whatever a condition holds, it is refused or
// becomes one CEL expression that signet compiles and that starts from the
// predicate (keys and values are quoted, never spliced in as CEL).
func FuzzKyvernoCondition(f *testing.F) {
	for _, seed := range [][3]string{
		{`"{{ builder.id }}"`, "Equals", `"https://ci.example.org"`},
		{`"{{ \"a\\\"b\".in }}"`, "NotEquals", `"x\") || true || (\""`},
		{`"{{ reviewers }}"`, "AnyIn", `["a", "b\"] || true"]`},
		{`"{{ licenses }}"`, "AllNotIn", `["GPL"]`},
		{`"{{ ok }}"`, "Equals", `true`},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, key, op, value string) {
		expr, err := kyConditionCEL(kyCondition{Key: json.RawMessage(key), Operator: op, Value: json.RawMessage(value)})
		if err != nil {
			return
		}
		if err := verify.CheckCondition(expr); err != nil {
			t.Fatalf("%s %s %s became CEL signet rejects: %s: %v", key, op, value, expr, err)
		}
		if !strings.HasPrefix(expr, "predicate") && !strings.HasPrefix(expr, "type(predicate") && !strings.HasPrefix(expr, "(type(predicate") {
			t.Fatalf("%s %s %s: CEL does not start from the predicate: %s", key, op, value, expr)
		}
	})
}
