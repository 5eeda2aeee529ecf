package convert

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/parser"

	"github.com/signet-dev/signet/internal/verify"
)

// ImageValidatingPolicy validations. The shapes converted are those of
// Kyverno's documentation and samples, each a requirement on every image
// of some image categories (images.containers, ...):
//
//	images.containers.map(image, verifyImageSignatures(image, [attestors.a, ...])).all(e, e > 0)
//	images.containers.map(image, verifyAttestationSignatures(image, attestations.x, [attestors.a])).all(e, e > 0)
//	images.containers.map(image, <condition over extractPayload(image, attestations.x)>).all(e, e)
//
// and the same with all(image, ...) straight over the images. The verify
// functions count the listed attestors that verified the image (or an
// attestation of the type); "> 0" asks for one, ">= n" for n, "== n" for
// all n listed. extractPayload is the in-toto statement (_type, subject,
// predicateType, predicate) that verifyAttestationSignatures verified
// (cosign's AttestationToPayloadJSON); a condition reading its predicate,
// predicateType or subject becomes a signet attestation condition.

type ivCheckKind int

const (
	ivSignatures ivCheckKind = iota
	ivAttestationCheck
	ivPayload
)

// ivCheck is one validation, read.
type ivCheck struct {
	path        string // spec.validations[i].expression
	kind        ivCheckKind
	categories  []string
	attestors   []string // the attestors listed (signatures, attestation)
	min         int32    // how many of them must verify
	attestation string   // attestation, payload
	condition   string   // payload: a signet condition
}

// ivImageCategories are the image lists Kyverno fills for workloads.
var ivImageCategories = map[string]bool{"containers": true, "initContainers": true, "ephemeralContainers": true}

const ivShapes = "only verifyImageSignatures(image, [attestors...]) and verifyAttestationSignatures(image, attestations.x, [attestors...]) counted with > 0, >= n or == n, and conditions on extractPayload(image, attestations.x).predicate, mapped over images.containers (or initContainers, ephemeralContainers) and required of all of them, are converted"

// ivReadCheck reads one validation expression, or says why it cannot.
func ivReadCheck(src string) (ivCheck, string) {
	var ck ivCheck
	e, ok := celParse(src)
	if !ok {
		return ck, "not a CEL expression the converter reads (or longer than 8 KiB); " + ivShapes
	}
	all, ok := memberCall(e, "all", 2)
	if !ok {
		return ck, ivShapes
	}
	x, ok := identName(all.Args()[0])
	if !ok {
		return ck, ivShapes
	}
	var v string
	var body ast.Expr // over v: a count compared, or a bool
	var cmp ast.Expr  // the comparison of x, when mapped
	if m, ok := memberCall(all.Target(), "map", 2); ok {
		if v, ok = identName(m.Args()[0]); !ok {
			return ck, ivShapes
		}
		if ck.categories, ok = ivCategories(m.Target()); !ok {
			return ck, ivShapes
		}
		body = m.Args()[1]
		if !isIdent(all.Args()[1], x) {
			cmp = all.Args()[1]
		}
	} else {
		if ck.categories, ok = ivCategories(all.Target()); !ok {
			return ck, ivShapes
		}
		v, body = x, all.Args()[1]
	}
	// A count compared: verify...(v, ...) OP n.
	count, op, n, isCount := ivComparison(body, cmp, x)
	if isCount {
		return ivCount(ck, count, op, n, v)
	}
	if cmp != nil {
		return ck, ivShapes
	}
	return ivCondition(ck, body, v)
}

// ivComparison finds "count OP n": in cmp (over x, with count the mapped
// body) or in body itself.
func ivComparison(body, cmp ast.Expr, x string) (count ast.Expr, op string, n int64, ok bool) {
	e, counted := cmp, body
	if cmp == nil {
		e, counted = body, nil
	}
	if e.Kind() != ast.CallKind {
		return nil, "", 0, false
	}
	c := e.AsCall()
	if c.IsMemberFunction() || len(c.Args()) != 2 {
		return nil, "", 0, false
	}
	switch c.FunctionName() {
	case "_>_", "_>=_", "_==_":
	default:
		return nil, "", 0, false
	}
	lit := c.Args()[1]
	if lit.Kind() != ast.LiteralKind {
		return nil, "", 0, false
	}
	n, isInt := lit.AsLiteral().Value().(int64)
	if !isInt {
		return nil, "", 0, false
	}
	left := c.Args()[0]
	if counted != nil {
		if !isIdent(left, x) {
			return nil, "", 0, false
		}
		left = counted
	}
	return left, c.FunctionName(), n, true
}

// ivCount reads verifyImageSignatures or verifyAttestationSignatures of v,
// counted.
func ivCount(ck ivCheck, count ast.Expr, op string, n int64, v string) (ivCheck, string) {
	if count.Kind() != ast.CallKind || count.AsCall().IsMemberFunction() {
		return ck, ivShapes
	}
	call := count.AsCall()
	args := call.Args()
	switch {
	case call.FunctionName() == "verifyImageSignatures" && len(args) == 2:
		ck.kind = ivSignatures
	case call.FunctionName() == "verifyAttestationSignatures" && len(args) == 3:
		ck.kind = ivAttestationCheck
		name, ok := ivNamed(args[1], "attestations")
		if !ok {
			return ck, "the attestation must be named as attestations.<name>"
		}
		ck.attestation = name
	default:
		return ck, ivShapes
	}
	if !isIdent(args[0], v) {
		return ck, "the image verified must be the image of the iteration (" + v + ")"
	}
	list := args[len(args)-1]
	if list.Kind() != ast.ListKind || len(list.AsList().OptionalIndices()) > 0 {
		return ck, "the attestors must be a list of attestors.<name>"
	}
	for _, el := range list.AsList().Elements() {
		name, ok := ivNamed(el, "attestors")
		if !ok {
			return ck, "the attestors must be a list of attestors.<name>"
		}
		ck.attestors = append(ck.attestors, name)
	}
	if len(ck.attestors) > 64 {
		return ck, "more than 64 attestors: signet allows at most 64 authorities in a policy"
	}
	listed := int64(len(ck.attestors))
	switch op {
	case "_>_":
		n++
	case "_==_":
		if n != listed {
			return ck, fmt.Sprintf("== %d of %d attestors (exactly that many, not at least) is not expressible; use >= %d", n, listed, n)
		}
	}
	switch {
	case n < 1:
		return ck, "the comparison is always true: it requires nothing"
	case n > listed || n > 64: // listed is at most 64
		return ck, fmt.Sprintf("it asks for %d of %d attestors, which never verifies (Kyverno denies every image it selects)", n, listed)
	}
	ck.min = int32(n)
	return ck, ""
}

// ivCondition reads a bool over extractPayload(v, attestations.x) into a
// signet condition.
func ivCondition(ck ivCheck, body ast.Expr, v string) (ivCheck, string) {
	ck.kind = ivPayload
	why := ""
	fac := ast.NewExprFactory()
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		if why != "" {
			return
		}
		switch e.Kind() {
		case ast.SelectKind:
			s := e.AsSelect()
			if op := s.Operand(); op.Kind() == ast.CallKind && op.AsCall().FunctionName() == "extractPayload" {
				name, msg := ivPayloadCall(op.AsCall(), v)
				if msg != "" {
					why = msg
					return
				}
				if ck.attestation != "" && ck.attestation != name {
					why = "it reads two attestations; give each its own validation"
					return
				}
				ck.attestation = name
				switch f := s.FieldName(); {
				case s.IsTestOnly():
					why = "has() of the statement's fields is not converted"
				case f == "predicate" || f == "predicateType" || f == "subject":
					e.SetKindCase(fac.NewIdent(e.ID(), f))
				default:
					why = fmt.Sprintf("extractPayload(...).%s: Kyverno's payload is the whole in-toto statement (_type, subject, predicateType, predicate), so %s is not one of its fields and Kyverno fails the evaluation for every image it selects; read extractPayload(...).predicate.%s", f, f, f)
				}
				return
			}
			walk(s.Operand())
		case ast.CallKind:
			c := e.AsCall()
			if c.FunctionName() == "extractPayload" {
				why = "only fields of extractPayload(...) (predicate, predicateType, subject) are converted"
				return
			}
			if c.IsMemberFunction() {
				walk(c.Target())
			}
			for _, a := range c.Args() {
				walk(a)
			}
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				walk(en.AsMapEntry().Key())
				walk(en.AsMapEntry().Value())
			}
		case ast.StructKind:
			why = "message construction is not converted"
		}
	}
	walk(body)
	if why != "" {
		return ck, why
	}
	if ck.attestation == "" {
		return ck, ivShapes
	}
	text, err := parser.Unparse(body, ast.NewSourceInfo(nil))
	if err != nil {
		return ck, "the condition cannot be rewritten: " + err.Error()
	}
	if err := verify.CheckCondition(text); err != nil {
		return ck, fmt.Sprintf("as a signet condition over the statement, %s does not compile (it may read the image or Kyverno's functions): %v", text, err)
	}
	ck.condition = text
	return ck, ""
}

// ivPayloadCall checks extractPayload(v, attestations.x) and returns x.
func ivPayloadCall(c ast.CallExpr, v string) (string, string) {
	if c.IsMemberFunction() || len(c.Args()) != 2 || !isIdent(c.Args()[0], v) {
		return "", "extractPayload must read the image of the iteration (" + v + ")"
	}
	name, ok := ivNamed(c.Args()[1], "attestations")
	if !ok {
		return "", "the attestation must be named as attestations.<name>"
	}
	return name, ""
}

// ivCategories reads images.containers, or a sum of such lists.
func ivCategories(e ast.Expr) ([]string, bool) {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "_+_" && len(e.AsCall().Args()) == 2 {
		a, ok1 := ivCategories(e.AsCall().Args()[0])
		b, ok2 := ivCategories(e.AsCall().Args()[1])
		return append(a, b...), ok1 && ok2
	}
	name, ok := ivNamed(e, "images")
	if !ok || !ivImageCategories[name] {
		return nil, false
	}
	return []string{name}, true
}

// ivNamed reads root.name or root["name"].
func ivNamed(e ast.Expr, root string) (string, bool) {
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if !s.IsTestOnly() && isIdent(s.Operand(), root) {
			return s.FieldName(), true
		}
	case ast.CallKind:
		c := e.AsCall()
		if c.FunctionName() == "_[_]" && len(c.Args()) == 2 && isIdent(c.Args()[0], root) {
			return stringLiteral(c.Args()[1])
		}
	}
	return "", false
}

func memberCall(e ast.Expr, fn string, args int) (ast.CallExpr, bool) {
	if e.Kind() != ast.CallKind {
		return nil, false
	}
	c := e.AsCall()
	if !c.IsMemberFunction() || c.FunctionName() != fn || len(c.Args()) != args {
		return nil, false
	}
	return c, true
}

func identName(e ast.Expr) (string, bool) {
	if e.Kind() != ast.IdentKind {
		return "", false
	}
	return e.AsIdent(), true
}

// ivValidations reads every validation; a validation that cannot be read
// is refused naming it.
func (c *conv) ivValidations(s *ivSpec) ([]ivCheck, bool) {
	if len(s.Validations) == 0 {
		c.invalid("spec.validations", "required")
		return nil, false
	}
	var out []ivCheck
	for i, v := range s.Validations {
		path := fmt.Sprintf("spec.validations[%d].expression", i)
		ck, why := ivReadCheck(v.Expression)
		if why != "" && ck.kind == ivPayload {
			for _, a := range s.Attestations {
				if a.Name == ck.attestation && a.Referrer != nil {
					why = fmt.Sprintf("extractPayload of the referrer %q reads the artifact itself, not an in-toto statement: signet verifies in-toto attestations only", a.Referrer.Type)
				}
			}
		}
		if why != "" {
			if !c.refuse(path, "validation dropped", "%s", why) {
				return nil, false
			}
			continue
		}
		ck.path = path
		if v.MessageExpression != "" {
			c.note(fmt.Sprintf("spec.validations[%d].messageExpression", i), "not converted: signet's denial says which check failed and why")
		}
		out = append(out, ck)
	}
	if len(out) == 0 {
		c.note("spec.validations", "none converted: the policy verifies nothing")
		return nil, false
	}
	return out, true
}

// ivCoverage notes how Kyverno's image categories and required differ
// from signet, which verifies every image field of the kinds it governs.
func (c *conv) ivCoverage(checks []ivCheck, required bool) {
	covered := map[string]bool{}
	for _, ck := range checks {
		for _, cat := range ck.categories {
			covered[cat] = true
		}
	}
	var missing []string
	for _, cat := range []string{"containers", "initContainers", "ephemeralContainers"} {
		if !covered[cat] {
			missing = append(missing, cat)
		}
	}
	if len(missing) == 0 {
		return
	}
	what := strings.Join(missing, ", ")
	if required {
		c.note("spec.validations", "they verify no %s: Kyverno then denies those images it selects unless some policy verified the same reference (required), even when they are signed; signet verifies them as the other images", what)
		return
	}
	c.note("spec.validations", "they verify no %s and required is false: Kyverno admits those images unverified; signet verifies them as the other images", what)
}
