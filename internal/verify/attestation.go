package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// Limits of attestation conditions. A condition is written by a policy
// author, but it runs over a statement that whoever the authority trusts
// signed, so both the statement and the work done on it are bounded.
const (
	// CELCostLimit bounds the work of one condition on one statement, in
	// cel-go's cost units: about one per variable, field selection,
	// comparison or call, plus the length of what a string function
	// reads. A comprehension step costs 5 (predicate.l.all(x, x == 1))
	// to 25 (Kyverno's AllNotIn as internal/convert writes it), so the
	// limit admits a condition that visits each of 40,000 to 200,000
	// elements once; an SBOM of 10,000 packages costs a quarter of it at
	// most (TestRealisticConditionsWithinCostLimit). It refuses runaway
	// work such as a loop nested in a loop over the same list. A
	// condition over the limit fails, with a reason naming the limit,
	// after a fraction of a second of CPU; the decision's deadline stops
	// any condition when it comes first.
	CELCostLimit = 1_000_000
	// CELBudget bounds the work of all conditions in one verification
	// (one policy, one digest: every authority, attestation and
	// statement), in the same units. A registry may hold hundreds of
	// statements for an image, each evaluated by up to 32 conditions;
	// once the budget is spent, the statements left are not evaluated,
	// and an attestation that no statement met before is undecided (not
	// denied: which statements came first depends on the order they were
	// found in), with a reason naming the budget. Ten times CELCostLimit
	// admits ten conditions at their limit, or an image with forty
	// statements whose conditions cost what an SBOM of 10,000 packages
	// does.
	CELBudget = 10 * CELCostLimit
	// MaxStatementItems bounds the array elements and object members of
	// a statement whose conditions are evaluated (its subject and
	// predicate become CEL values). A statement with more is refused
	// before it is decoded; the reason names the limit.
	MaxStatementItems = 100_000
	// MaxStatementDepth bounds the nesting of arrays and objects in a
	// statement whose conditions are evaluated.
	MaxStatementDepth = 64
	// MaxStatementBytes bounds the size of a statement whose conditions
	// are evaluated (the registry's default blob limit).
	MaxStatementBytes = 4 << 20

	// celInterruptEvery is how many comprehension steps run between two
	// looks at the decision's deadline.
	celInterruptEvery = 100
)

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("predicateType", cel.StringType),
		cel.Variable("subject", cel.ListType(cel.DynType)),
		cel.Variable("predicate", cel.DynType),
	)
	if err != nil {
		panic(err) // static declarations: cannot fail
	}
	return env
}()

type compiledAttestation struct {
	Attestation
	programs []cel.Program
}

func compileAttestation(a Attestation) (compiledAttestation, error) {
	ca := compiledAttestation{Attestation: a}
	if a.PredicateType == "" {
		return ca, errors.New("predicateType: required")
	}
	if ca.Name == "" {
		ca.Name = a.PredicateType
	}
	for i, expr := range a.Conditions {
		ast, iss := celEnv.Compile(expr)
		if iss.Err() != nil {
			return ca, fmt.Errorf("conditions[%d]: %w", i, iss.Err())
		}
		if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
			return ca, fmt.Errorf("conditions[%d]: %q is a %s, want a bool", i, expr, ast.OutputType())
		}
		prg, err := celEnv.Program(ast, cel.CostLimit(CELCostLimit), cel.InterruptCheckFrequency(celInterruptEvery))
		if err != nil {
			return ca, fmt.Errorf("conditions[%d]: %w", i, err)
		}
		ca.programs = append(ca.programs, prg)
	}
	return ca, nil
}

// statement is a verified in-toto statement as CEL sees it.
type statement struct {
	PredicateType string          `json:"predicateType"`
	Subject       []any           `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// evaluate reports whether one verified statement meets every condition,
// and the cost the conditions took (cel-go's units, see CELCostLimit).
// The error is an Undecided of kind ErrDeadline when ctx ended before
// every condition was evaluated (it wraps ctx's error); otherwise a Denial
// saying why the statement does not meet the conditions
// (ErrConditionFailed), or is not JSON (ErrMalformed).
func (a compiledAttestation) evaluate(ctx context.Context, payload []byte) (uint64, error) {
	if len(a.programs) == 0 {
		var st statement
		if err := json.Unmarshal(payload, &st); err != nil {
			return 0, deny(ErrMalformed, "statement is not JSON: %v", err)
		}
		return 0, nil
	}
	if err := checkStatementSize(payload); err != nil {
		return 0, deny(ErrConditionFailed, "%v", err)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return 0, deny(ErrMalformed, "statement is not JSON: %v", err)
	}
	var predicate any
	if len(st.Predicate) > 0 {
		if err := json.Unmarshal(st.Predicate, &predicate); err != nil {
			return 0, deny(ErrMalformed, "predicate is not JSON: %v", err)
		}
	}
	if st.Subject == nil {
		st.Subject = []any{}
	}
	vars := map[string]any{"predicateType": st.PredicateType, "subject": st.Subject, "predicate": predicate}
	var total uint64
	for i, prg := range a.programs {
		out, det, err := prg.ContextEval(ctx, vars)
		if det != nil && det.ActualCost() != nil {
			total += *det.ActualCost()
		}
		if err != nil {
			return total, conditionError(ctx, a.Conditions[i], err)
		}
		if out != types.True {
			return total, deny(ErrConditionFailed, "condition %q is false", a.Conditions[i])
		}
	}
	return total, nil
}

// conditionError says why evaluating expr failed: the decision's deadline
// (undecided), the cost limit, or the condition itself (a field that is
// absent, a comparison of mismatched types).
func conditionError(ctx context.Context, expr string, err error) error {
	if ctx.Err() != nil && errors.Is(err, interpreter.InterruptError{}) {
		return &Undecided{Kind: ErrDeadline, Err: fmt.Errorf("evaluating condition %q: %w", expr, err)}
	}
	var cancelled interpreter.EvalCancelledError
	if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
		return deny(ErrConditionFailed, "condition %q exceeds the cost limit of %d (about that many operations) on this statement", expr, CELCostLimit)
	}
	return deny(ErrConditionFailed, "condition %q: %v", expr, err)
}

// CheckCondition reports whether expr is a valid attestation condition, with
// the compiler's message when it is not.
func CheckCondition(expr string) error {
	_, err := compileAttestation(Attestation{PredicateType: "check", Conditions: []string{expr}})
	if err != nil {
		_, msg, _ := strings.Cut(err.Error(), ": ")
		return errors.New(msg)
	}
	return nil
}

// verifyAttestations checks an authority that requires attestations: each
// must be met by a statement its signers made.
func (c *Compiled) verifyAttestations(ctx context.Context, a *compiledAuthority, req Request, digest []byte, cands []candidate, malformed []Failure, spent *uint64) (AuthorityResult, error) {
	ar := AuthorityResult{Name: a.Name, Passed: true}
	seen := map[string]bool{}
	var (
		reasons   []string
		causes    []*Denial // why the attestations definitely not met are not
		undecided error     // why the first undecided attestation is
	)
	for _, at := range a.attestations {
		tried := 0
		var (
			failed   []Failure
			sigs     []Signature
			violated error // a verified statement fails the conditions (All)
			stopped  error // the deadline or the budget ended a statement's evaluation
		)
		for _, cand := range cands {
			if cand.payload != nil || cand.predicateType != at.PredicateType || !a.readsFrom(req, cand) {
				continue
			}
			tried++
			sig, err := c.verifyCandidate(a, req, digest, cand)
			if err == nil && sig.PredicateType != at.PredicateType {
				err = deny(ErrMalformed, "verified statement has predicate type %q", sig.PredicateType)
			}
			if err != nil {
				failed = append(failed, failure(cand.ev.Source(), err))
				continue
			}
			switch {
			case len(at.programs) == 0:
				_, err = at.evaluate(ctx, cand.bundle.GetDsseEnvelope().GetPayload())
			case ctx.Err() != nil:
				// Past the deadline: nothing more is decoded or evaluated.
				err = &Undecided{Kind: ErrDeadline, Err: fmt.Errorf("evaluating conditions: %w", context.Cause(ctx))}
			case *spent >= CELBudget:
				// Undecided, not failed: which statements are evaluated
				// before the budget runs out depends on the order they
				// were found in, and this one could meet the conditions.
				err = &Undecided{Kind: ErrBudget, Err: fmt.Errorf("conditions not evaluated: this verification's conditions already cost %d, over the budget of %d", *spent, CELBudget)}
			default:
				var cost uint64
				cost, err = at.evaluate(ctx, cand.bundle.GetDsseEnvelope().GetPayload())
				*spent += cost
			}
			if err != nil {
				failed = append(failed, failure(cand.ev.Source(), err))
				switch {
				case errors.Is(err, ErrUndecided):
					if stopped == nil {
						stopped = err
					}
				case at.All && violated == nil:
					violated = err
				}
				continue
			}
			sigs = append(sigs, sig)
		}
		ar.Failures = append(ar.Failures, failed...)
		what := "attestation " + at.Name
		switch {
		case violated != nil:
			ar.Passed = false
			reasons = append(reasons, fmt.Sprintf("%s: not every statement meets the conditions: %s", what, violated))
			causes = append(causes, &Denial{Kind: ErrConditionFailed, Reason: reasons[len(reasons)-1], Causes: denials(violated)})
			continue
		case stopped != nil && (len(sigs) == 0 || at.All):
			// The statement not evaluated could have met the
			// conditions (or, with All, violated them).
			ar.Passed = false
			reasons = append(reasons, fmt.Sprintf("%s: could not decide: %v", what, stopped))
			if undecided == nil {
				undecided = fmt.Errorf("%s: %w", what, stopped)
			}
			continue
		case len(sigs) == 0:
			ar.Passed = false
			d := failureDenial("statement", ErrNoAttestation, tried, append(failed, malformed...), a)
			d.Reason = what + ": " + d.Reason
			reasons = append(reasons, d.Reason)
			causes = append(causes, d)
			continue
		}
		for _, s := range sigs {
			if !seen[s.Signer] {
				seen[s.Signer] = true
				ar.Signatures = append(ar.Signatures, s)
			}
		}
	}
	if ar.Passed {
		return ar, nil
	}
	ar.Failures = append(ar.Failures, malformed...)
	ar.Signatures = nil
	ar.Reason = strings.Join(reasons, "; ")
	if len(causes) > 0 {
		ar.Err = &Denial{Reason: ar.Reason, Causes: causes}
		return ar, nil
	}
	ar.Undecided = true
	ar.Err = undecided
	return ar, undecided
}
