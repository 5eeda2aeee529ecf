package verify

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statementWith is an in-toto statement whose predicate is {"l": [...]}
// with the given numbers: it has overhead more items than the list.
func statementWith(elems ...int) []byte {
	var b strings.Builder
	b.WriteString(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[],"predicate":{"l":[`)
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(e))
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// overhead is the items of statementWith besides the list's elements: the
// statement's four members and the predicate's one.
const overhead = 5

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func mustCompile(t *testing.T, conds ...string) compiledAttestation {
	t.Helper()
	ca, err := compileAttestation(Attestation{PredicateType: "p", Conditions: conds})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestConditionStopsAtDeadline: a condition over the largest statement
// evaluated stops at the decision's deadline, as undecided wrapping the
// context's error, after at most a few interrupt intervals of work (counted
// in cel-go's cost units), where running to completion costs several
// units per element.
func TestConditionStopsAtDeadline(t *testing.T) {
	n := MaxStatementItems - overhead
	payload := statementWith(repeat(1, n)...)
	at := mustCompile(t, "predicate.l.all(x, x == 1)")

	expired, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	cancelled, cancelNow := context.WithCancel(t.Context())
	cancelNow()

	// Work a stopped evaluation may do: the interrupt is looked at every
	// celInterruptEvery comprehension steps, each costing a few units.
	const stoppedCost = 10 * celInterruptEvery
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		wantErr error // nil: the statement meets the condition
		minCost uint64
		maxCost uint64
	}{
		{name: "no deadline: runs to completion", ctx: t.Context(), minCost: uint64(n), maxCost: CELCostLimit},
		{name: "deadline passed", ctx: expired, wantErr: context.DeadlineExceeded, maxCost: stoppedCost},
		{name: "cancelled", ctx: cancelled, wantErr: context.Canceled, maxCost: stoppedCost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cost, err := at.evaluate(tc.ctx, payload)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("evaluate: %v", err)
				}
			} else if !errors.Is(err, ErrDeadline) || !errors.Is(err, ErrUndecided) || !errors.Is(err, tc.wantErr) || errors.Is(err, ErrDenied) {
				t.Fatalf("evaluate: %v, want an undecided error of kind ErrDeadline wrapping %v", err, tc.wantErr)
			}
			if cost < tc.minCost || cost > tc.maxCost {
				t.Errorf("evaluation cost %d, want %d to %d", cost, tc.minCost, tc.maxCost)
			}
		})
	}
}

// TestConditionCostLimit: a condition that does quadratic work over a
// statement within the size limits stops at the cost limit, with a reason
// that names it, as a failed statement (not undecided: the same evidence
// always fails the same way).
func TestConditionCostLimit(t *testing.T) {
	elems := make([]int, 2000)
	for i := range elems {
		elems[i] = i
	}
	expr := "predicate.l.all(x, predicate.l.exists(y, y == x))"
	at := mustCompile(t, expr)
	cost, err := at.evaluate(t.Context(), statementWith(elems...))
	want := `condition "` + expr + `" exceeds the cost limit of 1000000 (about that many operations) on this statement`
	if !errors.Is(err, ErrConditionFailed) || err.Error() != want {
		t.Fatalf("evaluate: %v, want a failed condition saying %q", err, want)
	}
	if errors.Is(err, ErrUndecided) {
		t.Errorf("a cost-limit breach is undecided: %v", err)
	}
	// It stopped at the limit, not after the 2000*2000/2 steps.
	if cost > CELCostLimit+100 {
		t.Errorf("evaluation cost %d, more than the limit %d", cost, CELCostLimit)
	}
}

// TestStatementLimits: a statement beyond a size limit is refused before
// anything is decoded or evaluated (cost 0), with a reason naming the
// limit; one within the limits is evaluated.
func TestStatementLimits(t *testing.T) {
	nested := func(depth int) []byte {
		return []byte(`{"predicateType":"p","predicate":{"l":` + strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2) + `}}`)
	}
	huge := statementWith(repeat(1, 1_000_000)...)
	const allOnes = "predicate.l.all(x, x == 1)"
	for _, tc := range []struct {
		name    string
		payload []byte
		cond    string
		wantErr string // "" when the statement meets the condition
	}{
		{"a million elements", huge, allOnes, "statement has more than 100000 array elements and object members, the limit for evaluating conditions"},
		{"at the item limit", statementWith(repeat(1, MaxStatementItems-overhead)...), allOnes, ""},
		{"one item over", statementWith(repeat(1, MaxStatementItems-overhead+1)...), allOnes, "more than 100000 array elements"},
		// Within the limit the condition is evaluated (and is false).
		{"at the depth limit", nested(MaxStatementDepth), "size(predicate.l) == 0", `condition "size(predicate.l) == 0" is false`},
		{"one level deeper", nested(MaxStatementDepth + 1), "size(predicate.l) == 0", "statement nests arrays and objects deeper than the limit of 64"},
		{"brackets and commas in strings do not count", []byte(`{"predicateType":"p","predicate":{"l":[1],"s":"` + strings.Repeat(`[{,\"`, MaxStatementItems) + `"}}`), allOnes, ""},
		{"over the byte limit", []byte(`{"predicateType":"p","predicate":{"l":[1],"s":"` + strings.Repeat("a", MaxStatementBytes) + `"}}`), allOnes, "more than the limit of 4194304"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := mustCompile(t, tc.cond)
			cost, err := at.evaluate(t.Context(), tc.payload)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("evaluate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConditionFailed) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("evaluate: %v, want a failed condition saying %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrUndecided) {
				t.Errorf("an over-size statement is undecided: %v", err)
			}
			if strings.Contains(tc.wantErr, "the limit") && cost != 0 {
				t.Errorf("refused after evaluating (cost %d)", cost)
			}
		})
	}
}

// TestRealisticConditionsWithinCostLimit: the conditions signet's tests,
// the documentation and the Kyverno converter write, over large but
// realistic statements (an SBOM of 10,000 packages, provenance with 5,000
// resolved dependencies), cost well under CELCostLimit: the limit refuses
// runaway work, not ordinary policies.
func TestRealisticConditionsWithinCostLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"name":"registry.example/acme/app","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicate":{`)
	b.WriteString(`"builder":{"id":"https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"},"approved":true,`)
	b.WriteString(`"reviewers":["ana@example.com","bob@example.com"],"buildDefinition":{"resolvedDependencies":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"uri":"git+https://github.com/acme/dep` + strconv.Itoa(i) + `@refs/tags/v1","digest":{"sha1":"` + strings.Repeat("0", 40) + `"}}`)
	}
	b.WriteString(`]},"packages":[`)
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"name":"pkg` + strconv.Itoa(i) + `","versionInfo":"1.2.3","licenseConcluded":"Apache-2.0"}`)
	}
	b.WriteString(`],"licenses":[`)
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"MIT"`)
	}
	b.WriteString(`]}}`)
	payload := []byte(b.String())
	if err := checkStatementSize(payload); err != nil {
		t.Fatalf("the realistic statement is over a limit: %v", err)
	}

	for _, cond := range []string{
		`predicate.builder.id.startsWith("https://github.com/acme/")`,
		`subject.exists(s, s.name == "registry.example/acme/app")`,
		`predicate.approved == true`,
		`predicate.buildDefinition.resolvedDependencies.all(d, d.uri.startsWith("git+https://github.com/acme/") && size(d.digest.sha1) == 40)`,
		`predicate.packages.all(p, !(p.licenseConcluded in ["GPL-3.0-only", "AGPL-3.0-only"]))`,
		`predicate.packages.exists(p, p.name == "pkg9999")`,
		// As internal/convert writes Kyverno's AllNotIn, AnyIn and Equals.
		`(type(predicate.licenses) == list ? predicate.licenses.all(k, type(k) == string && !(k in ["GPL-3.0", "AGPL-3.0"]) && !k.matches("[*?]")) : type(predicate.licenses) == string && !(predicate.licenses in ["GPL-3.0", "AGPL-3.0"]) && !predicate.licenses.matches("[*?]"))`,
		`(type(predicate.reviewers) == list ? predicate.reviewers.exists(k, k in ["ana@example.com", "bob@example.com"]) : predicate.reviewers in ["ana@example.com", "bob@example.com"])`,
		`predicate.builder.id == "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"`,
	} {
		t.Run(cond, func(t *testing.T) {
			cost, err := mustCompile(t, cond).evaluate(t.Context(), payload)
			if err != nil {
				t.Fatalf("evaluate: %v", err)
			}
			t.Logf("cost %d", cost)
			if cost > CELCostLimit/4 {
				t.Errorf("cost %d, more than a quarter of the limit %d", cost, CELCostLimit)
			}
		})
	}
}
