package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// celCostLimit bounds the work one condition may do on one statement.
const celCostLimit = 1_000_000

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
		prg, err := celEnv.Program(ast, cel.CostLimit(celCostLimit))
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

// evaluate reports whether one verified statement meets every condition.
func (a compiledAttestation) evaluate(payload []byte) error {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("statement is not JSON: %w", err)
	}
	if len(a.programs) == 0 {
		return nil
	}
	var predicate any
	if len(st.Predicate) > 0 {
		if err := json.Unmarshal(st.Predicate, &predicate); err != nil {
			return fmt.Errorf("predicate is not JSON: %w", err)
		}
	}
	if st.Subject == nil {
		st.Subject = []any{}
	}
	vars := map[string]any{"predicateType": st.PredicateType, "subject": st.Subject, "predicate": predicate}
	for i, prg := range a.programs {
		out, _, err := prg.Eval(vars)
		if err != nil {
			return fmt.Errorf("condition %q: %w", a.Conditions[i], err)
		}
		if out != types.True {
			return fmt.Errorf("condition %q is false", a.Conditions[i])
		}
	}
	return nil
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
